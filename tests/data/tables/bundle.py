"""Write the tables the tests read, from a folder of public data sets.

    python tests/data/tables/bundle.py SOURCE [--out FOLDER]

SOURCE holds one folder per table, ``<name>/data.csv.gz`` + ``<name>/meta.json`` (the developers'
suite of real public tables). Each table is written to ``FOLDER/<name>/`` (by default the folder
of this script), with README.md listing them. The tests never run this script: it is kept so the
bundled tables can be rebuilt and reviewed.

- A table of up to ``WHOLE_UP_TO`` rows, or one in ``KEPT_WHOLE``, is copied byte for byte.
- A larger table becomes a sample of ``--rows`` rows drawn as the tests drew it before
  (``pandas.DataFrame.sample(rows, random_state=seed)``, in that order), every field written
  back exactly as in the source; its meta.json gains ``"sample": {"rows", "of", "seed"}`` and
  keeps every original field (``rows`` and the class counts still describe the whole table).
- A table whose data file is already in the repository (``IN_REPOSITORY``), byte for byte, is
  not stored twice: its meta.json gains ``"data_file"``, that file's path from the repository root.
"""

from __future__ import annotations

import argparse
import filecmp
import gzip
import json
import shutil
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]

WHOLE_UP_TO = 6_500  # a sample of a table just over 6,000 rows would drop only a few of them

# larger tables that a test needs whole, and why
KEPT_WHOLE = {
    "chem97_alevel": "the grouped split tests split by school: 13 pupils a school, 3 in a sample",
    "cps1988_wages": "the shift test trains on the first 20,000 of the shuffled rows",
    "lalonde_dw_cps": "a causal table: its known effect is computed on the whole table",
}

# tables whose data file the repository already holds
IN_REPOSITORY = {"adult": "examples/data/adult.csv.gz"}


def gzipped_csv(df: pd.DataFrame) -> bytes:
    """``df`` as a gzip-compressed CSV whose bytes depend on the data only (no time stamp)."""
    text = df.to_csv(index=False, lineterminator="\n")
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def write_meta(path: Path, meta: dict) -> None:
    """Write a meta.json in the layout of the source suite."""
    path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")


def bundle_one(source: Path, out: Path, rows: int, seed: int) -> dict:
    """Write one table to ``out`` and return its meta.json as written."""
    meta = json.loads((source / "meta.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    name = source.name
    data = source / "data.csv.gz"
    if name in IN_REPOSITORY:
        kept = REPO / IN_REPOSITORY[name]
        if not filecmp.cmp(data, kept, shallow=False):
            raise SystemExit(f"{name}: {kept} is not the same file as {data}")
        meta["data_file"] = IN_REPOSITORY[name]
        write_meta(out / "meta.json", meta)
    elif meta["rows"] <= WHOLE_UP_TO or name in KEPT_WHOLE:
        shutil.copyfile(data, out / "data.csv.gz")
        shutil.copyfile(source / "meta.json", out / "meta.json")
    else:
        # every field as text, so that what is written back is what the source holds
        df = pd.read_csv(data, dtype=str, keep_default_na=False, na_filter=False)
        sample = df.sample(rows, random_state=seed).reset_index(drop=True)
        (out / "data.csv.gz").write_bytes(gzipped_csv(sample))
        meta["sample"] = {"rows": rows, "of": len(df), "seed": seed}
        write_meta(out / "meta.json", meta)
    if meta.get("test_file"):  # the source's own test split, which meta.json names
        shutil.copyfile(source / meta["test_file"], out / meta["test_file"])
    return meta


def how(meta: dict) -> str:
    """How a table was bundled, in a few words."""
    if "data_file" in meta:
        return f"whole, read from `{meta['data_file']}`"
    if "sample" in meta:
        s = meta["sample"]
        return f"{s['rows']:,} of {s['of']:,} rows, seed {s['seed']}"
    why = KEPT_WHOLE.get(meta["name"])
    extra = f": {why}" if why else ""
    test = f", and `{meta['test_file']}`" if meta.get("test_file") else ""
    return f"whole, {meta['rows']:,} rows{test}{extra}"


def readme(metas: list[dict], rows: int, seed: int) -> str:
    """README.md of the bundled folder: each table, its source and license, how it was taken."""
    lines = [
        "# Tables the tests read",
        "",
        "Real public tables, none written by mlre: one folder per table, `data.csv.gz` (header row,",
        "gzip) and `meta.json`. The tests read them through `tests/helpers.py` (`dataset`, `meta`,",
        "`data_file`, `ALL_DATASETS`). Written by `bundle.py` from the developers' suite of data sets",
        "(SUITE: a folder of `<name>/data.csv.gz` + `<name>/meta.json`, outside the repository):",
        "",
        "    python tests/data/tables/bundle.py SUITE",
        "",
        f"A table of up to {WHOLE_UP_TO:,} rows is copied whole, byte for byte, as is a larger",
        f"one that a test needs whole. Every other table is a sample of {rows:,} rows,",
        f"`DataFrame.sample({rows}, random_state={seed})` in the order drawn (the rows that",
        f"`dataset(name, rows={rows})` of tests/helpers.py draws from the whole table), each",
        "field as in the source. Its `meta.json` says so in `sample` (`rows`, `of`, `seed`) and",
        "keeps every original field: `rows`, `class_counts` and `target_summary` describe the",
        "whole table. A `meta.json` with `data_file` names the table's data file elsewhere in the",
        "repository (the same bytes as the source) rather than a second copy.",
        "",
        "meta.json keys: `name`, `target`, `task`, `metric`, `rows`, `columns`, `column_names`,",
        "`source`, `license_note`, `categorical_columns`, `missing_cells`, `class_counts` or",
        "`target_summary`; where relevant `time_column`, `test_file`, `costs`, `positive_class`,",
        "`sensitive`, `datetime_columns`, `text_columns`, `id_columns`, `weight_column`, `na_values`,",
        "`dropped_columns`, `notes`; for causal tables `treatment`, `outcome`, `covariates`,",
        "`estimand`, `known_effect`.",
        "",
        "| table | task | target | bundled | source | license |",
        "|---|---|---|---|---|---|",
    ]
    for m in metas:
        cells = [m["name"], m["task"], f"`{m['target']}`", how(m), m["source"], m["license_note"]]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Bundle every table of the source folder."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", type=Path, help="folder of <name>/data.csv.gz + <name>/meta.json")
    p.add_argument("--out", type=Path, default=HERE, help="where to write (default: beside this)")
    p.add_argument("--rows", type=int, default=6_000, help="rows of a sampled table")
    p.add_argument("--seed", type=int, default=0, help="random_state of the samples")
    args = p.parse_args()
    names = sorted(d.name for d in args.source.iterdir() if (d / "meta.json").is_file())
    if not names:
        raise SystemExit(f"no <name>/meta.json under {args.source}")
    metas = [bundle_one(args.source / n, args.out / n, args.rows, args.seed) for n in names]
    (args.out / "README.md").write_text(readme(metas, args.rows, args.seed))
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"{len(metas)} tables in {args.out}, {total / 1e6:.1f} MB in all")


if __name__ == "__main__":
    main()
