"""Where the shared suite of public data sets lies: read by the benchmark scripts beside this file.

The suite (one folder per table: ``<name>/meta.json`` + ``<name>/data.csv.gz``) is not part of
the repository: it lies beside it, in ``../shared/datasets``. ``MLRE_DATASETS`` names another
folder. The tests do not read it: they read the tables bundled in ``tests/data/tables``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

ENV = "MLRE_DATASETS"
REPO = Path(__file__).resolve().parents[1]
# beside the repository, as the developers' machines have it; inside it, as a checkout may
PLACES = (REPO.parent / "shared" / "datasets", REPO / "shared" / "datasets")


def datasets_dir(
    given: str | Path | None = None, need: Iterable[str] = (), option: str | None = None
) -> Path:
    """The folder of the shared data sets: ``given`` (a command-line option), else
    ``$MLRE_DATASETS``, else ../shared/datasets; exits with a one-line message when it is absent
    or lacks a table named in ``need``."""
    env = os.environ.get(ENV)
    places = (Path(given),) if given else (Path(env),) if env else PLACES
    how = f"pass {option} FOLDER or set {ENV}=FOLDER" if option else f"set {ENV}=FOLDER"
    found = next((p for p in places if any(p.glob("*/meta.json"))), None)
    if found is None:
        where = " or ".join(str(p) for p in places)
        raise SystemExit(
            f"this bench reads the shared data sets, not found in {where}: "
            f"{how} (a folder of <name>/meta.json + <name>/data.csv.gz)"
        )
    missing = [n for n in need if not (found / n / "meta.json").is_file()]
    if missing:
        raise SystemExit(
            f"this bench reads {', '.join(missing)} from the shared data sets, "
            f"not found in {found}: {how}"
        )
    return found.resolve()  # the benches change folder before they read
