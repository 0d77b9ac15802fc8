"""``mlre compare-datasets``: candidates compared on every data set of a folder, then across
them (Friedman with Nemenyi's critical difference, the Bayesian signed-rank test)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlre.api.compare import Progress, compare, comparison_executor
from mlre.errors import SpecError


def compare_datasets(
    folder: str | Path,
    candidates: list[str],
    *,
    target: str | None = None,
    target_from_meta: bool = False,
    repeats: int | None = None,
    folds: int | None = None,
    max_rows: int = 10_000,
    seed: int = 0,
    track: bool = True,
    progress: Progress | None = None,
    ray: str | None = None,
) -> Any:
    """``candidates`` on every data set in ``folder`` (one sub-folder each: a data file and, with
    ``target_from_meta``, a ``meta.json`` naming target, task and metric): each data set's paired
    comparison, then Friedman's test with the Nemenyi critical difference and the Bayesian
    signed-rank test over the data sets. Tables above ``max_rows`` are sampled (seeded).
    """
    from mlre.errors import InputError
    from mlre.evaluate.across import AcrossResult, analyse

    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder of data sets")
    if not target_from_meta and target is None:
        raise SpecError("say which column to predict", hint="--target COLUMN or --target-from-meta")
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    with comparison_executor(ray):  # one Ray for every data set (each comparison joins it)
        for sub in folders:
            _compare_one(sub, candidates, target, target_from_meta, repeats, folds, max_rows,
                         seed, progress, ray, results, skipped)  # fmt: skip
    names = next(([c.name for c in r.candidates] for r in results.values()), None)
    if names is None:
        raise InputError(f"no data set in {root} could be compared", hint=str(skipped)[:300])
    across = AcrossResult(names, results, skipped)
    analyse(across, seed=seed)
    across.run_id = _record_across(across) if track else None
    return across


def _compare_one(
    sub: Path,
    candidates: list[str],
    target: str | None,
    target_from_meta: bool,
    repeats: int | None,
    folds: int | None,
    max_rows: int,
    seed: int,
    progress: Progress | None,
    ray: str | None,
    results: dict[str, Any],
    skipped: dict[str, str],
) -> None:
    """The paired comparison on the data set in ``sub`` into ``results``, or why not into
    ``skipped``."""
    from mlre.data.load import load_table
    from mlre.errors import MlreError

    meta_path = sub / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    files = sorted(p for p in sub.iterdir() if p.name.startswith("data."))
    if not files:
        skipped[sub.name] = "no data file"
        return
    if target_from_meta and meta.get("task") not in ("binary", "multiclass", "regression"):
        skipped[sub.name] = f"its task is {meta.get('task')!r}, not a prediction task"
        return
    column = meta.get("target") if target_from_meta else target
    try:
        df = load_table(files[0]).frame
        if len(df) > max_rows:
            df = df.sample(max_rows, random_state=seed).reset_index(drop=True)
        step = None if progress is None else (
            lambda name, done, total, d=sub.name: progress(f"{d}: {name}", done, total)
        )  # fmt: skip
        results[sub.name] = compare(
            df,
            candidates,
            target=column,
            metric=meta.get("metric") if target_from_meta else None,
            repeats=repeats or 2,
            folds=folds or 5,
            seed=seed,
            track=False,
            progress=step,
            ray=ray,
        )
    except MlreError as err:
        skipped[sub.name] = err.message


def _record_across(across: Any) -> str:
    from mlre.evaluate.across import critical_difference_figure
    from mlre.track import tracked_run

    with tracked_run("mlre-compare", "compare-datasets", {"mlre.kind": "compare"}) as parent:
        parent.log_params(
            {
                "candidates": ", ".join(across.names),
                "baseline": across.baseline,
                "datasets": len(across.table()),
            }
        )
        if across.ranks is not None:
            parent.log_metrics(
                {
                    f"mean_rank_{n}": r
                    for n, r in zip(across.names, across.ranks.mean_ranks, strict=True)
                }
                | {"critical_difference": across.ranks.critical_difference}
            )
            parent.log_json(
                critical_difference_figure(across.ranks), "compare/critical_difference.json"
            )
        parent.log_json(across.to_dict(), "compare/compare_datasets.json")
        parent.log_text(markdown_across(across), "compare/compare_datasets.md")
        return parent.run_id


def markdown_across(across: Any) -> str:
    """The comparison over data sets as Markdown."""
    table = across.table()
    lines = [
        f"## {', '.join(across.names)} over {len(table)} data sets",
        "",
        "| data set | metric | " + " | ".join(across.names) + " |",
        "|---|---|" + "---:|" * len(across.names),
    ]
    for name, row in table.items():
        metric = across.datasets[name].metric
        lines.append(
            f"| {name} | {metric} | " + " | ".join(f"{row[n]:.4f}" for n in across.names) + " |"
        )
    if across.ranks is not None:
        r = across.ranks
        lines += [
            "",
            "Mean rank (1 = best): "
            + ", ".join(f"{n} {v:.2f}" for n, v in zip(r.names, r.mean_ranks, strict=True))
            + f"; critical difference {r.critical_difference:.2f}"
            + (f"; Friedman p = {r.p_value:.3g}" if r.p_value is not None else ""),
            "",
        ]
        lines += [f"- {p.sentence}" for p in across.pairs]
    for name, reason in across.skipped.items():
        lines.append(f"- left out {name}: {reason}")
    return "\n".join(lines) + "\n"


def write_across_page(across: Any, path: str | Path) -> Path:
    """Write the scores, the ranks and the critical-difference diagram of ``across`` (what
    ``compare_datasets`` returns) to ``path`` as one self-contained HTML page."""
    from mlre.evaluate.across import across_html

    path = Path(path)
    path.write_text(across_html(across), encoding="utf-8")
    return path
