"""Benchmark ``mlre run`` against FLAML, AutoGluon (medium_quality) and default LightGBM.

Run with the project's interpreter (mlre must be importable)::

    .venv/bin/python bench/automl_bench.py                                   # everything
    .venv/bin/python bench/automl_bench.py --datasets adult,diamonds --folds 1 --budget 30

What it does, for every data set (``meta.json`` + ``data.csv.gz`` under the shared data sets
folder, which is not part of the repository: ``../shared/datasets`` beside it, or ``--data-dir``
or ``$MLRE_DATASETS``; the ``causal`` ones are skipped) and every fold seed 0..folds-1:

1. Reads the table once (meta ``na_values`` such as ``'?'`` read as NaN, meta ``id_columns``
   dropped, rows without a target dropped), splits it 80/20 with that seed (stratified for
   classification) and writes ``train``, ``test_X`` (features only) and ``test_y`` Parquet files
   to ``bench/.work/automl/data/``. Every system gets exactly these files.
2. Runs each system in its own child process and its own virtualenv, with the same time budget:
   mlre as a user calls it (``mlre.run(train, ..., track=False)``: the training table alone, no
   test table handed in; the project's venv), FLAML (``bench/.venv-flaml``),
   AutoGluon ``presets="medium_quality"`` (``bench/.venv-autogluon``; ``autogluon_best`` is the
   same install with ``presets="best_quality"``) and LightGBM with default
   parameters (the project's venv; it has no budget). The peer venvs are created on first use
   from ``bench/requirements-<system>.txt``; a system that cannot be installed is reported as
   unavailable, with the reason, and the others go on.
3. Each child trains on ``train`` and writes its predictions for ``test_X`` (class probabilities
   with its own class order, or values). The parent scores all of them with one function:
   ROC AUC on the positive class (binary), log loss over the sorted union of labels
   (multiclass), RMSE (regression).
4. Records each child's wall time (fork to reap: start-up, imports, reading, fitting,
   predicting), peak RSS (``os.wait4``), failures (non-zero exit, or killed at
   ``budget * 3 + 60`` s) and budget overruns (wall > ``budget * 1.1``), then prints per data set
   and system the score, wall time and peak memory, and per system the mean normalised score
   (best = 1, worst = 0 on each data set and fold), the mean rank, failures and overruns. The
   same results go to ``bench/.work/automl/`` as JSON and Markdown.

The same file is the child program: ``automl_bench.py --child SYSTEM ...`` runs one system in
whatever interpreter starts it, so the module imports nothing but the standard library at the
top. Linux only (``/proc``, ``ru_maxrss`` in KiB).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from machine import busy_cores, busy_ticks  # the module beside this script
from suite import datasets_dir

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / ".work" / "automl"

SYSTEMS = (
    "mlre", "mlre_holidays", "flaml", "flaml_time", "autogluon", "autogluon_best", "lightgbm",
)  # fmt: skip
#: Systems that run in a virtualenv of their own, made from bench/requirements-<venv>.txt.
PEER_SYSTEMS = ("flaml", "flaml_time", "autogluon", "autogluon_best")
#: The virtualenv a peer system runs in, where it is not the system's own name.
PEER_VENV = {"autogluon_best": "autogluon", "flaml_time": "flaml"}
#: AutoGluon's preset for each of its entries.
AUTOGLUON_PRESET = {"autogluon": "medium_quality", "autogluon_best": "best_quality"}
#: The line a child prints (last) with its own facts, as JSON.
RESULT_MARK = "BENCH_RESULT "
#: Split of the outer holdout every system is scored on.
TEST_FRACTION = 0.2
#: A run is over budget when its whole wall time exceeds the budget by more than this factor.
OVERRUN_FACTOR = 1.1
#: Cores kept busy by other processes above which a run counts as disturbed.
BUSY_THRESHOLD = 0.25
#: Package names that mean a CUDA build was pulled in (never wanted on these CPU machines).
CUDA_PREFIXES = ("nvidia-", "cuda-", "triton")

GREATER_IS_BETTER = {"roc_auc": True, "log_loss": False, "rmse": False}


# =========================================================================== the child side
# Everything below up to "the parent side" runs inside the measured child process, in the
# system's own interpreter. Heavy imports happen inside the functions.


def _child_read(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """Train frame (features + target), test features, and the test labels (mlre only)."""
    import pandas as pd

    train = pd.read_parquet(args.train)
    test_x = pd.read_parquet(args.test_x)
    test_y = pd.read_parquet(args.test_y)[args.target] if args.test_y else None
    return train, test_x, test_y


def _child_mlre(args: argparse.Namespace, facts: dict[str, Any]) -> tuple[list, Any]:
    import mlre

    train, test_x, _ = _child_read(args)
    facts["import_read_s"] = time.perf_counter() - facts.pop("_t")
    t = time.perf_counter()
    # as a user calls it: the training table alone (mlre keeps its own holdout, scores on it and
    # then refits on every row); the test rows are seen only by the parent's scoring. force:
    # error findings of the audit would otherwise stop the run (they are recorded below).
    settings: dict[str, Any] = {}
    if args.time_column:  # rows are events in time: say so, as a user of such a table would
        settings["time_column"] = args.time_column
    if args.child == "mlre_holidays":
        settings["calendar"] = {"country": args.country}
    res = mlre.run(
        train, target=args.target, time_budget=args.budget, metric=args.metric,
        track=False, seed=args.seed, force=True, report=False, **settings,
    )  # fmt: skip
    facts["settings"] = settings
    facts["fit_s"] = time.perf_counter() - t
    facts["train_rows"] = len(train)
    facts["own_holdout"] = res.holdout.get(args.metric)
    facts["search_score"] = res.search_score
    facts["search_interval"] = (
        None if res.search_interval is None else [float(v) for v in res.search_interval]
    )
    facts["trials"] = len(res.leaderboard)
    facts["ensemble"] = [
        {"family": m.get("family"), "weight": m.get("weight"), "stacked": m.get("stacked", False)}
        for m in (res.ensemble or [])
    ]
    facts["phases"] = sorted({row["phase"] for row in res.leaderboard})
    facts["audit_errors"] = [f"{f.check}: {f.message}" for f in res.findings.of("error")]
    t = time.perf_counter()
    if args.task == "regression":
        classes, pred = [], res.model.predict(test_x)
    else:
        classes, pred = list(res.model.classes_), res.model.predict_proba(test_x)
    facts["predict_s"] = time.perf_counter() - t
    return classes, pred


def _child_flaml(args: argparse.Namespace, facts: dict[str, Any]) -> tuple[list, Any]:
    from flaml import AutoML

    train, test_x, _ = _child_read(args)
    facts["import_read_s"] = time.perf_counter() - facts.pop("_t")
    y = train.pop(args.target)
    automl = AutoML()
    t = time.perf_counter()
    automl.fit(
        X_train=train, y_train=y, task="regression" if args.task == "regression" else "classification",
        metric=args.metric, time_budget=args.budget, seed=args.seed, verbose=0, log_file_name="",
        **({"split_type": "time"} if args.child == "flaml_time" else {}),
    )  # fmt: skip
    facts["fit_s"] = time.perf_counter() - t
    facts["best_estimator"] = automl.best_estimator
    facts["best_config"] = automl.best_config
    facts["best_loss"] = automl.best_loss
    t = time.perf_counter()
    if args.task == "regression":
        classes, pred = [], automl.predict(test_x)
    else:
        classes, pred = list(automl.classes_), automl.predict_proba(test_x)
    facts["predict_s"] = time.perf_counter() - t
    return classes, pred


def _child_autogluon(args: argparse.Namespace, facts: dict[str, Any]) -> tuple[list, Any]:
    from autogluon.tabular import TabularPredictor

    train, test_x, _ = _child_read(args)
    facts["import_read_s"] = time.perf_counter() - facts.pop("_t")
    metric = {"rmse": "root_mean_squared_error"}.get(args.metric, args.metric)
    t = time.perf_counter()
    predictor = TabularPredictor(
        label=args.target, problem_type=args.task, eval_metric=metric,
        path=str(Path(args.workdir) / "ag_models"), verbosity=0,
    ).fit(train, presets=AUTOGLUON_PRESET[args.child], time_limit=args.budget)  # fmt: skip
    facts["fit_s"] = time.perf_counter() - t
    board = predictor.leaderboard(silent=True)
    facts["models"] = len(board)
    facts["best_model"] = predictor.model_best
    facts["model_names"] = [str(m) for m in board["model"].tolist()]
    t = time.perf_counter()
    if args.task == "regression":
        classes, pred = [], predictor.predict(test_x).to_numpy()
    else:
        proba = predictor.predict_proba(test_x, as_multiclass=True)
        classes, pred = list(proba.columns), proba.to_numpy()
    facts["predict_s"] = time.perf_counter() - t
    return classes, pred


def _child_lightgbm(args: argparse.Namespace, facts: dict[str, Any]) -> tuple[list, Any]:
    import lightgbm as lgb
    import pandas as pd

    train, test_x, _ = _child_read(args)
    facts["import_read_s"] = time.perf_counter() - facts.pop("_t")
    y = train.pop(args.target)
    # LightGBM reads pandas categoricals natively: every non-numeric column becomes one, with
    # the training categories (a level unseen in training is NaN in the test rows).
    for col in train.columns:
        s = train[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            continue
        train[col] = s.astype(str).where(s.notna()).astype("category")
        cats = train[col].cat.categories
        t_col = test_x[col]
        test_x[col] = pd.Categorical(t_col.astype(str).where(t_col.notna()), categories=cats)
    facts["categorical"] = int(sum(str(d) == "category" for d in train.dtypes))
    t = time.perf_counter()
    if args.task == "regression":
        model = lgb.LGBMRegressor(random_state=args.seed, verbose=-1).fit(train, y)
    else:
        model = lgb.LGBMClassifier(random_state=args.seed, verbose=-1).fit(train, y)
    facts["fit_s"] = time.perf_counter() - t
    t = time.perf_counter()
    if args.task == "regression":
        classes, pred = [], model.predict(test_x)
    else:
        classes, pred = list(model.classes_), model.predict_proba(test_x)
    facts["predict_s"] = time.perf_counter() - t
    return classes, pred


CHILD_VERSIONS = {
    "mlre": ("mlre", "pandas", "numpy", "scikit-learn", "lightgbm", "xgboost-cpu", "catboost"),
    "flaml": ("flaml", "pandas", "numpy", "scikit-learn", "lightgbm", "xgboost-cpu"),
    "autogluon": (
        "autogluon.tabular", "pandas", "numpy", "scikit-learn", "lightgbm", "xgboost-cpu",
        "catboost", "torch",
    ),
    "lightgbm": ("lightgbm", "pandas", "numpy"),
}  # fmt: skip
CHILD_VERSIONS["autogluon_best"] = CHILD_VERSIONS["autogluon"]
CHILD_VERSIONS["flaml_time"] = CHILD_VERSIONS["flaml"]
CHILD_VERSIONS["mlre_holidays"] = CHILD_VERSIONS["mlre"]


def child_main(args: argparse.Namespace) -> int:
    """Run one system on one split; write predictions to ``args.out`` and print the facts."""
    import warnings

    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    runner = {
        "mlre": _child_mlre, "mlre_holidays": _child_mlre, "flaml": _child_flaml,
        "flaml_time": _child_flaml, "autogluon": _child_autogluon,
        "autogluon_best": _child_autogluon, "lightgbm": _child_lightgbm,
    }[args.child]  # fmt: skip
    facts: dict[str, Any] = {"_t": t0}
    classes, pred = runner(args, facts)
    import numpy as np

    np.savez(
        args.out,
        classes=np.asarray([str(c) for c in classes], dtype=str),
        pred=np.asarray(pred, dtype=float),
    )
    facts["child_s"] = time.perf_counter() - t0
    from importlib import metadata

    versions = {}
    for name in CHILD_VERSIONS[args.child]:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    facts["versions"] = versions
    print(RESULT_MARK + json.dumps(facts, default=str), flush=True)
    return 0


# =========================================================================== the parent side


@dataclass
class Child:
    """How one measured child process went."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    others_cores: float | None
    returncode: int
    timed_out: bool
    payload: dict[str, Any] | None
    log: str
    group_peak_mb: float | None = None


def group_rss_mb(pgid: int) -> float | None:
    """Resident memory of every live process in process group ``pgid`` added up (Linux)."""
    total, page = 0, os.sysconf("SC_PAGE_SIZE")
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:  # field 5, after "(comm)"
                continue
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e6


def wait_for_quiet(max_wait_s: float, threshold: float = BUSY_THRESHOLD) -> float | None:
    """Wait (up to ``max_wait_s``) until other processes keep under ``threshold`` cores busy.

    Returns the last load measured. On a shared machine a test suite running next to the bench
    slows whichever system runs at the time; each run also records how busy the machine was.
    """
    load = busy_cores()
    if max_wait_s <= 0 or load is None or load < threshold:
        return load
    deadline = time.monotonic() + max_wait_s
    while load is not None and load >= threshold and time.monotonic() < deadline:
        load = busy_cores(2.0)
    return load


def run_child(
    argv: list[str], *, timeout_s: float, cwd: Path, env: dict[str, str], log_path: Path
) -> Child:
    """Run ``argv``, returning its wall time and its own peak resident memory.

    Peak memory is ``ru_maxrss`` of the rusage that ``os.wait4`` returns for exactly this child
    (on Linux: the child and the descendants it waited for, such as worker processes; it is
    filled in for a child killed at the timeout too). ``getrusage(RUSAGE_CHILDREN)`` would not
    do: it is the maximum over every child reaped so far. Wall time runs from just before the
    fork to the reap, polled every 20 ms. The child gets its own process group, so a timeout
    kills its workers too. Its stdout and stderr go to ``log_path``.

    ``ru_maxrss`` is the largest single process, not a sum: a system that fits in parallel worker
    processes (mlre's folds, AutoGluon's or FLAML's workers) holds more than that at once. So the
    resident memory of the whole process group is also summed from /proc every 0.5 s, and its
    maximum kept (``group_peak_mb``; a sample can miss a short peak).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        ticks = busy_ticks()
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = started + timeout_s
        timed_out = False
        group_peak, next_sample = 0.0, started
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = time.perf_counter()
            if now >= next_sample:  # every 0.5 s: the sum over the child and its workers
                group_peak = max(group_peak, group_rss_mb(proc.pid) or 0.0)
                next_sample = now + 0.5
            if now > deadline:
                timed_out = True
                with contextlib.suppress(ProcessLookupError):  # it may have just ended
                    os.killpg(proc.pid, signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - started
        ticks_after = busy_ticks()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    # workers left behind in the group (a child that exits before its pool) must not linger
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    text = log_path.read_text(errors="replace")
    payload = None
    for line in reversed(text.splitlines()):
        if line.startswith(RESULT_MARK):
            payload = json.loads(line[len(RESULT_MARK) :])
            break
    cpu = usage.ru_utime + usage.ru_stime
    others = None
    if ticks is not None and ticks_after is not None:
        machine_busy = (ticks_after - ticks) / os.sysconf("SC_CLK_TCK")
        others = max(0.0, (machine_busy - cpu) / wall)
    return Child(
        wall_s=wall, cpu_s=cpu, peak_rss_mb=usage.ru_maxrss * 1024 / 1e6,  # KiB on Linux
        others_cores=others, returncode=proc.returncode, timed_out=timed_out, payload=payload,
        log=text, group_peak_mb=group_peak or None,
    )  # fmt: skip


# --------------------------------------------------------------------------- virtualenvs


@dataclass
class Env:
    """Where a system runs, or why it cannot."""

    system: str
    python: str | None
    reason: str = ""
    venv: str | None = None
    venv_mb: float | None = None
    install_s: float | None = None


def dir_mb(path: Path) -> float:
    """Size of the files under ``path``, in 10^6 bytes (symlinks not followed)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total / 1e6


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(python), "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def _tail(text: str, lines: int = 6) -> str:
    kept = [ln for ln in text.strip().splitlines() if "is ignored: it is neither" not in ln]
    return " | ".join(kept[-lines:])


def _cuda_in_report(report: dict[str, Any]) -> list[str]:
    names = [item["metadata"]["name"].lower() for item in report.get("install", [])]
    return [n for n in names if n.startswith(CUDA_PREFIXES)]


def _install_step(python: Path, reqs: list[str]) -> str | None:
    """Install ``reqs`` into the venv after a dry run shows that no CUDA package comes along.

    Returns None on success, else the reason it was not installed.
    """
    with tempfile.NamedTemporaryFile(suffix=".json") as rep:
        dry = _pip(python, "install", "--dry-run", "--quiet", "--report", rep.name, *reqs)
        if dry.returncode != 0:
            return f"pip cannot resolve {' '.join(reqs)}: {_tail(dry.stderr)}"
        cuda = _cuda_in_report(json.loads(Path(rep.name).read_text() or "{}"))
    if cuda:
        return (f"installing {' '.join(reqs)} would pull CUDA packages ({', '.join(cuda[:5])}); "
                "refused (no CPU wheel of torch here?)")  # fmt: skip
    done = _pip(python, "install", "--quiet", *reqs)
    if done.returncode != 0:
        return f"pip install {' '.join(reqs)} failed: {_tail(done.stderr)}"
    return None


IMPORT_CHECK = {
    "flaml": "from flaml import AutoML",
    "autogluon": "from autogluon.tabular import TabularPredictor",
}


def peer_env_for(system: str) -> Env:
    """The system's venv interpreter, creating the venv and installing the pins when needed.

    The requirements file lists pins one a line; lines naming ``torch`` are installed first, on
    their own (so that the CPU wheel is in place before anything could ask for torch). Before
    each step a ``pip install --dry-run --report`` checks that no CUDA package (nvidia-*,
    triton) would be installed, and ``pip list`` checks the result. A stamp holding the sha256 of
    the requirements file marks a finished install; a change of pins rebuilds the venv.
    """
    venv = BENCH_DIR / f".venv-{system}"
    reqs_file = BENCH_DIR / f"requirements-{system}.txt"
    python = venv / "bin" / "python"
    stamp = venv / ".requirements.sha256"
    env = Env(system, None, venv=str(venv.relative_to(REPO_DIR)))
    if not reqs_file.exists():
        env.reason = f"{reqs_file.name} is missing"
        return env
    wanted = hashlib.sha256(reqs_file.read_bytes()).hexdigest()
    if not (python.exists() and stamp.exists() and stamp.read_text().strip() == wanted):
        started = time.perf_counter()
        print(f"creating {venv.relative_to(REPO_DIR)} from {reqs_file.name} "
              "(needs the package index; a few minutes) ...", flush=True)  # fmt: skip
        if venv.exists():
            shutil.rmtree(venv)
        base = shutil.which("python3") or sys.executable
        made = subprocess.run([base, "-m", "venv", str(venv)], capture_output=True, text=True)
        if made.returncode != 0:
            env.reason = f"python3 -m venv failed: {_tail(made.stderr)}"
            return env
        lines = [ln.split("#", 1)[0].strip() for ln in reqs_file.read_text().splitlines()]
        lines = [ln for ln in lines if ln]
        first = [ln for ln in lines if ln.lower().startswith("torch") and ln[5:6] in "=<>~! "]
        rest = [ln for ln in lines if ln not in first]
        for step in (first, rest):
            if step and (why := _install_step(python, step)):
                env.reason = why
                return env
        env.install_s = time.perf_counter() - started
        stamp.write_text(wanted + "\n")
    listed = _pip(python, "list", "--format=json")
    if listed.returncode == 0:
        cuda = [
            p["name"]
            for p in json.loads(listed.stdout)
            if p["name"].lower().startswith(CUDA_PREFIXES)
        ]
        if cuda:
            env.reason = (
                f"the venv holds CUDA packages ({', '.join(cuda[:5])}); delete it and retry"
            )
            return env
    check = subprocess.run(
        [str(python), "-c", IMPORT_CHECK[system]], capture_output=True, text=True
    )
    if check.returncode != 0:
        env.reason = f"import fails: {_tail(check.stderr, 3)}"
        return env
    env.python = str(python)
    env.venv_mb = dir_mb(venv)
    return env


def environments(systems: list[str]) -> dict[str, Env]:
    """Where each system runs: mlre and LightGBM in the project's venv, the others in theirs."""
    own = REPO_DIR / ".venv" / "bin" / "python"
    project_python = str(own) if own.exists() else sys.executable
    out = {}
    for system in systems:
        if system in PEER_SYSTEMS:
            out[system] = peer_env_for(PEER_VENV.get(system, system))
            out[system].system = system
        else:
            out[system] = Env(system, project_python, venv=".venv")
        if out[system].python is None:
            print(f"  {system}: UNAVAILABLE ({out[system].reason})", flush=True)
    return out


# --------------------------------------------------------------------------- the data


def data_root(given: str | None) -> Path:
    """The folder of data sets: ``--data-dir``, ``$MLRE_DATASETS`` or ../shared/datasets."""
    return datasets_dir(given, option="--data-dir")


def all_metas(root: Path) -> dict[str, dict[str, Any]]:
    """Every data set's meta.json, by name, causal ones left out."""
    out = {}
    for meta_path in sorted(root.glob("*/meta.json")):
        meta = json.loads(meta_path.read_text())
        if meta.get("task") in ("binary", "multiclass", "regression"):
            meta["_dir"] = str(meta_path.parent)
            out[meta.get("name", meta_path.parent.name)] = meta
    return out


def label_key(value: Any) -> str:
    """A class label as text, the same way the children write theirs."""
    return str(value)


def sorted_labels(values: list[str]) -> list[str]:
    """Labels in a common order: numerically when they all are numbers, else as text."""
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


@dataclass
class Split:
    """The files of one data set and fold seed, and what the parent needs to score them."""

    dataset: str
    seed: int
    train: Path
    test_x: Path
    test_y: Path
    target: str
    task: str
    metric: str
    y_test: list[Any]
    labels: list[str]  # classification: the sorted union of train and test labels
    positive: str | None  # binary: the positive class
    rows: int
    features: int
    time_column: str | None = None  # a forward split: the time column the rows are ordered by


def make_split(
    meta: dict[str, Any],
    seed: int,
    cache: dict[str, Any],
    forward: bool = False,
    source_test: bool = False,
) -> Split:
    """Read (once per data set), split with ``seed`` and write the Parquet files; ``forward``:
    the earliest 80% of rows by the table's ``time_column`` train, the latest 20% test (the seed
    plays no part); ``source_test``: the whole table trains and the source's own test split
    (meta ``test_file``) tests."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    name, target, task = meta["name"], meta["target"], meta["task"]
    if name not in cache:
        df = pd.read_csv(
            Path(meta["_dir"]) / "data.csv.gz", na_values=meta.get("na_values") or None
        )
        df = df.drop(columns=[c for c in meta.get("id_columns", []) if c in df.columns])
        cache.clear()  # one table at a time in memory
        cache[name] = df[df[target].notna()].reset_index(drop=True)
    df = cache[name]
    stratify = df[target] if task != "regression" else None
    time_column = meta.get("time_column") if forward else None
    if source_test:
        if not meta.get("test_file"):
            raise ValueError(f"{name} has no test_file in its meta.json")
        train = df
        test = pd.read_csv(Path(meta["_dir"]) / meta["test_file"],
                           na_values=meta.get("na_values") or None)  # fmt: skip
        test = test.drop(columns=[c for c in meta.get("id_columns", []) if c in test.columns])
        test = test[test[target].notna()].reset_index(drop=True)
    elif forward:
        if not time_column:
            raise ValueError(f"{name} has no time_column in its meta.json: no forward split")
        order = pd.to_datetime(df[time_column], errors="coerce").argsort(kind="stable")
        ordered = df.iloc[order.to_numpy()].reset_index(drop=True)
        cut = len(ordered) - round(TEST_FRACTION * len(ordered))
        train, test = ordered.iloc[:cut], ordered.iloc[cut:]
    else:
        try:
            train, test = train_test_split(
                df, test_size=TEST_FRACTION, random_state=seed, stratify=stratify
            )
        except ValueError:  # a class with a single row cannot be stratified: split plainly
            train, test = train_test_split(df, test_size=TEST_FRACTION, random_state=seed)
    folder = WORK_DIR / "data"
    folder.mkdir(parents=True, exist_ok=True)
    kind = "forward" if forward else "source_test" if source_test else f"s{seed}"
    stem = folder / f"{name}_{kind}"
    paths = [Path(f"{stem}_{part}.parquet") for part in ("train", "test_X", "test_y")]
    train.reset_index(drop=True).to_parquet(paths[0], index=False)
    test.drop(columns=[target]).reset_index(drop=True).to_parquet(paths[1], index=False)
    test[[target]].reset_index(drop=True).to_parquet(paths[2], index=False)
    labels: list[str] = []
    positive = None
    if task != "regression":
        labels = sorted_labels(sorted({label_key(v) for v in df[target]}))
        if task == "binary":
            given = meta.get("positive_class")
            positive = (
                label_key(given) if given is not None and label_key(given) in labels else labels[-1]
            )
    return Split(
        dataset=name, seed=seed, train=paths[0], test_x=paths[1], test_y=paths[2], target=target,
        task=task, metric=meta["metric"], y_test=test[target].tolist(), labels=labels,
        positive=positive, rows=len(df), features=df.shape[1] - 1, time_column=time_column,
    )  # fmt: skip


# --------------------------------------------------------------------------- scoring


def score(split: Split, classes: list[str], pred: Any) -> float:
    """The data set's metric on the test rows, the same way for every system.

    binary: ROC AUC of the positive class's probability; multiclass: log loss with the columns
    mapped to the common sorted label order (a class a system never predicts gets 0, rows are
    clipped at 1e-15 and renormalised); regression: RMSE.
    """
    import numpy as np
    from sklearn.metrics import log_loss, roc_auc_score

    pred = np.asarray(pred, dtype=float)
    if split.task == "regression":
        y = np.asarray(split.y_test, dtype=float)
        return float(np.sqrt(np.mean((y - pred.ravel()) ** 2)))
    y = [label_key(v) for v in split.y_test]
    if pred.ndim != 2 or pred.shape[1] != len(classes):
        raise ValueError(f"{pred.shape} probabilities for {len(classes)} classes")
    if split.task == "binary":
        if split.positive not in classes:
            raise ValueError(f"no probability column for the positive class {split.positive!r}")
        p = pred[:, classes.index(split.positive)]
        return float(roc_auc_score([v == split.positive for v in y], p))
    unknown = set(classes) - set(split.labels)
    if unknown:
        raise ValueError(f"unknown class column(s) {sorted(unknown)}")
    full = np.zeros((len(y), len(split.labels)))
    for j, c in enumerate(classes):
        full[:, split.labels.index(c)] += pred[:, j]
    full = np.clip(full, 1e-15, None)
    full /= full.sum(axis=1, keepdims=True)
    index = {c: i for i, c in enumerate(split.labels)}
    return float(log_loss([index[v] for v in y], full, labels=list(range(len(split.labels)))))


# --------------------------------------------------------------------------- one run


@dataclass
class Result:
    """One system on one data set and fold."""

    dataset: str
    fold: int
    system: str
    metric: str
    status: str  # ok | failed | timeout | unavailable | unscorable
    score: float | None = None
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_rss_mb: float | None = None
    group_peak_mb: float | None = None  # sampled sum over the child's process group
    others_cores: float | None = None
    overrun: bool = False
    error: str = ""
    facts: dict[str, Any] = field(default_factory=dict)


def child_env() -> dict[str, str]:
    """The children's environment: no MLflow store of the user's, no hub downloads, no GUI."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update({"HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"})
    return env


def run_one(
    split: Split, system: str, env: Env, budget: float, quiet_wait: float, country: str = "US"
) -> Result:
    """Run ``system`` on ``split`` in a child, then score its predictions here."""
    res = Result(split.dataset, split.seed, system, split.metric, "ok")
    if env.python is None:
        res.status, res.error = "unavailable", env.reason
        return res
    scratch = Path(
        tempfile.mkdtemp(prefix=f"{split.dataset}_s{split.seed}_{system}_", dir=WORK_DIR)
    )
    out = scratch / "pred.npz"
    argv = [
        env.python, str(Path(__file__).resolve()), "--child", system, "--train", str(split.train),
        "--test-x", str(split.test_x), "--target", split.target, "--task", split.task,
        "--metric", split.metric, "--budget", str(budget), "--seed", str(split.seed),
        "--out", str(out), "--workdir", str(scratch),
    ]  # fmt: skip
    if system.startswith("mlre"):
        argv += ["--test-y", str(split.test_y), "--country", country]
        if split.time_column:
            argv += ["--time-column", split.time_column]
    wait_for_quiet(quiet_wait)
    log_path = WORK_DIR / "logs" / f"{split.dataset}_s{split.seed}_{system}.log"
    child = run_child(
        argv, timeout_s=budget * 3 + 60, cwd=scratch, env=child_env(), log_path=log_path
    )
    res.wall_s, res.cpu_s, res.peak_rss_mb = child.wall_s, child.cpu_s, child.peak_rss_mb
    res.others_cores, res.group_peak_mb = child.others_cores, child.group_peak_mb
    res.overrun = child.wall_s > budget * OVERRUN_FACTOR
    res.facts = child.payload or {}
    try:
        if child.timed_out:
            res.status, res.error = "timeout", f"killed after {child.wall_s:.0f} s"
        elif child.returncode != 0 or child.payload is None or not out.exists():
            res.status = "failed"
            res.error = f"exit {child.returncode}: {_tail(child.log, 4)}"
        else:
            import numpy as np

            with np.load(out) as npz:
                classes, pred = [str(c) for c in npz["classes"]], npz["pred"]
            try:
                res.score = score(split, classes, pred)
            except ValueError as err:
                res.status, res.error = "unscorable", str(err)
            else:
                if not math.isfinite(res.score):
                    res.status, res.error = "unscorable", f"score {res.score}"
                    res.score = None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return res


# --------------------------------------------------------------------------- summaries


def _task_key(r: Result) -> tuple[str, int]:
    return (r.dataset, r.fold)


def normalise(results: list[Result]) -> dict[tuple[str, int, str], tuple[float, float]]:
    """(normalised score, rank) of every available system on every data set and fold.

    Per data set and fold, among the systems that were available: the best score gets 1, the
    worst 0 (direction of the metric taken into account; all equal: 1). A system that failed,
    timed out or gave unscorable predictions gets 0 and the last rank. Ranks are 1 = best, ties
    share the mean rank.
    """
    out: dict[tuple[str, int, str], tuple[float, float]] = {}
    tasks: dict[tuple[str, int], list[Result]] = {}
    for r in results:
        if r.status != "unavailable":
            tasks.setdefault(_task_key(r), []).append(r)
    for (ds, fold), rows in tasks.items():
        greater = GREATER_IS_BETTER[rows[0].metric]
        scored = [r for r in rows if r.score is not None]
        values = [r.score for r in scored]
        lo, hi = (min(values), max(values)) if values else (0.0, 0.0)
        n = len(rows)
        for r in rows:
            if r.score is None:
                out[(ds, fold, r.system)] = (0.0, float(n))
                continue
            norm = (
                1.0
                if hi == lo
                else (r.score - lo) / (hi - lo)
                if greater
                else (hi - r.score) / (hi - lo)
            )
            better = sum(1 for v in values if (v > r.score if greater else v < r.score))
            ties = sum(1 for v in values if v == r.score)
            out[(ds, fold, r.system)] = (norm, better + (ties + 1) / 2)
    return out


def summary(results: list[Result], systems: list[str], budget: float) -> list[dict[str, Any]]:
    """Per system: mean normalised score, mean rank, failures, overruns, time and memory."""
    norm = normalise(results)
    rows = []
    for system in systems:
        mine = [r for r in results if r.system == system]
        avail = [r for r in mine if r.status != "unavailable"]
        pairs = [norm[(r.dataset, r.fold, system)] for r in avail]
        walls = [r.wall_s for r in avail if r.wall_s is not None]
        rss = [r.peak_rss_mb for r in avail if r.peak_rss_mb is not None]
        group = [r.group_peak_mb for r in avail if r.group_peak_mb is not None]
        rows.append({
            "system": system,
            "runs": len(avail),
            "mean_normalised": sum(p[0] for p in pairs) / len(pairs) if pairs else None,
            "mean_rank": sum(p[1] for p in pairs) / len(pairs) if pairs else None,
            "failures": sum(1 for r in avail if r.status != "ok"),
            "overruns": sum(1 for r in avail if r.overrun),
            "mean_wall_s": sum(walls) / len(walls) if walls else None,
            "max_wall_s": max(walls) if walls else None,
            "max_peak_mb": max(rss) if rss else None,
            "max_group_peak_mb": max(group) if group else None,
            "unavailable": next((r.error for r in mine if r.status == "unavailable"), ""),
        })  # fmt: skip
    return rows


def _fmt(v: float | None, spec: str) -> str:
    return "" if v is None else format(v, spec)


def detail_cells(results: list[Result], systems: list[str]) -> tuple[list[str], list[list[str]]]:
    """Per data set x system: score (mean over folds), wall time, peak MB, status."""
    header = [
        "data set", "metric", "system", "score", "wall (s)", "peak RSS (MB)", "group peak (MB)",
        "other load", "status",
    ]  # fmt: skip
    cells = []
    datasets = list(dict.fromkeys(r.dataset for r in results))
    for ds in datasets:
        for system in systems:
            rows = [r for r in results if r.dataset == ds and r.system == system]
            if not rows:
                continue
            scores = [r.score for r in rows if r.score is not None]
            walls = [r.wall_s for r in rows if r.wall_s is not None]
            rss = [r.peak_rss_mb for r in rows if r.peak_rss_mb is not None]
            group = [r.group_peak_mb for r in rows if r.group_peak_mb is not None]
            load = [r.others_cores for r in rows if r.others_cores is not None]
            bad = [r for r in rows if r.status != "ok"]
            status = "ok" if not bad else ", ".join(f"{r.status} (fold {r.fold})" for r in bad)
            if any(r.overrun for r in rows):
                status += f", over budget x{len([r for r in rows if r.overrun])}"
            cells.append([
                ds, rows[0].metric, system,
                _fmt(sum(scores) / len(scores) if scores else None, ".4f"),
                _fmt(sum(walls) / len(walls) if walls else None, ".1f"),
                _fmt(max(rss) if rss else None, ",.0f"),
                _fmt(max(group) if group else None, ",.0f"),
                _fmt(sum(load) / len(load) if load else None, ".2f"),
                status,
            ])  # fmt: skip
    return header, cells


def summary_cells(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = [
        "system", "runs", "mean normalised score", "mean rank", "failures", "overruns",
        "mean wall (s)", "max wall (s)", "max peak RSS (MB)", "max group peak (MB)",
    ]  # fmt: skip
    cells = [
        [
            r["system"] + (" (UNAVAILABLE)" if r["unavailable"] else ""), str(r["runs"]),
            _fmt(r["mean_normalised"], ".3f"), _fmt(r["mean_rank"], ".2f"), str(r["failures"]),
            str(r["overruns"]), _fmt(r["mean_wall_s"], ".1f"), _fmt(r["max_wall_s"], ".1f"),
            _fmt(r["max_peak_mb"], ",.0f"), _fmt(r["max_group_peak_mb"], ",.0f"),
        ]
        for r in rows
    ]  # fmt: skip
    return header, cells


#: The target on mlre's own estimate holds on tables with fewer training rows than this.
SMALL_TABLE = 2_000


def estimate_lines(results: list[Result]) -> list[str]:
    """Markdown: mlre's search estimate, the range it expected its own holdout score in, and
    whether the holdout fell inside (the target is judged on tables under ``SMALL_TABLE`` rows)."""
    rows, inside, small = [], 0, 0
    for r in results:
        f = r.facts
        if r.system != "mlre" or r.status != "ok" or not f.get("search_interval"):
            continue
        low, high = f["search_interval"]
        own = f.get("own_holdout")
        hit = own is not None and low <= own <= high
        if f.get("train_rows", SMALL_TABLE) < SMALL_TABLE:
            small += 1
            inside += hit
        rows.append([
            r.dataset, str(r.fold), f"{f.get('train_rows', 0):,}", _fmt(f.get("search_score"), ".4f"),
            f"{low:.4f} to {high:.4f}", _fmt(own, ".4f"), "yes" if hit else "NO",
        ])  # fmt: skip
    if not rows:
        return []
    header = ["data set", "fold", "training rows", "search estimate", "holdout expected in",
              "own holdout", "inside"]  # fmt: skip
    return [
        "mlre's own estimate (95% range for its holdout score, from the out-of-fold rows' and the"
        " holdout's bootstrap noise):",
        "",
        markdown_table(header, rows, {2, 3, 5}),
        "",
        f"Tables under {SMALL_TABLE:,} training rows: own holdout inside the expected range on "
        f"{inside} of {small} runs.",
        "",
    ]


def markdown_table(header: list[str], cells: list[list[str]], numeric: set[int]) -> str:
    align = ["---:" if i in numeric else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in cells]
    return "\n".join(lines)


def print_table(title: str, header: list[str], cells: list[list[str]], numeric: set[int]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
        print(f"\n{title}")
        for line in [header, *cells]:
            print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)))
        return
    table = Table(title=title)
    for i, h in enumerate(header):
        table.add_column(h, justify="right" if i in numeric else "left")
    for row in cells:
        table.add_row(*row)
    Console(width=200).print(table)


def machine_info() -> dict[str, Any]:
    """Cores, memory, CPU model, load, OS and Python versions, mlre's commit."""
    info: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_count": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
        "platform": platform.platform(), "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(), "busy_cores_at_start": busy_cores(),
    }  # fmt: skip
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) * 1024 / 1e9, 1)
    git = subprocess.run(
        ["git", "-C", str(BENCH_DIR), "describe", "--always", "--dirty", "--abbrev=12"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if git.returncode == 0:
        info["mlre_commit"] = git.stdout.strip()  # "-dirty": uncommitted changes were measured
    return info


def save(
    info: dict[str, Any], args: argparse.Namespace, envs: dict[str, Env], results: list[Result],
    systems: list[str], final: bool, name: str = "results",
) -> tuple[Path, Path]:  # fmt: skip
    """Write the results (so far) as JSON and Markdown; returns both paths."""
    stamp = info["date"].replace(" UTC", "").replace(":", "").replace(" ", "_").replace("-", "")
    kind = "_forward" if args.forward else "_source_test" if args.source_test else ""
    base = WORK_DIR / f"{name}{kind}_{stamp}_b{args.budget:g}_f{args.folds}"
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    rows = summary(results, systems, args.budget)
    payload = {
        "machine": info, "finished": final,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "budget_s": args.budget, "folds": args.folds, "timeout_s": args.budget * 3 + 60,
        "overrun_above_s": args.budget * OVERRUN_FACTOR,
        "environments": {k: asdict(v) for k, v in envs.items()},
        "summary": rows, "results": [asdict(r) for r in results],
    }  # fmt: skip
    base.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=str))
    h1, c1 = detail_cells(results, systems)
    h2, c2 = summary_cells(rows)
    md = [
        f"Run on {info['date']}: `{payload['command']}`",
        "",
        f"Machine: {info.get('cpu', '?')}, {info['usable_cores']} usable cores, "
        f"{info.get('memory_gb', '?')} GB RAM, Python {info['python']}, mlre {info.get('mlre_commit', '?')}; "
        f"load average at start {', '.join(f'{v:.2f}' for v in info['loadavg_at_start'])}.",
        "",
        markdown_table(h1, c1, {3, 4, 5, 6, 7}),
        "",
        markdown_table(h2, c2, set(range(1, 10))),
        "",
    ]
    md += estimate_lines(results)
    for name, env in envs.items():
        if env.python is None:
            md.append(f"- {name}: unavailable: {env.reason}")
    if not final:
        md.append("- (interrupted: partial results)")
    base.with_suffix(".md").write_text("\n".join(md) + "\n")
    return base.with_suffix(".json"), base.with_suffix(".md")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--datasets", help="comma-separated names (default: every non-causal one)")
    p.add_argument("--folds", type=int, default=2, help="outer splits, seeds 0..folds-1")
    p.add_argument("--budget", type=float, default=60.0, help="seconds per system and split")
    p.add_argument(
        "--systems", default=",".join(SYSTEMS), help="comma-separated, of " + ",".join(SYSTEMS)
    )
    p.add_argument("--data-dir", help="folder of <name>/meta.json + data.csv.gz")
    p.add_argument("--quiet-wait", type=float, default=30.0,
                   help="seconds to wait, before each run, for other processes to go quiet")  # fmt: skip
    p.add_argument("--setup-only", action="store_true", help="create the peer venvs and stop")
    p.add_argument("--forward", action="store_true",
                   help="tables with a time_column only, split forward in time (the earliest "
                        "80%% train, the latest 20%% test; one fold); mlre is told the time "
                        "column")  # fmt: skip
    p.add_argument("--source-test", action="store_true",
                   help="tables with a test_file only: train on the whole data.csv.gz, test on "
                        "the source's own test split (one fold)")  # fmt: skip
    p.add_argument("--country", default="US",
                   help="the country of public holidays mlre_holidays is given")  # fmt: skip
    p.add_argument("--merge", nargs="+", metavar="JSON",
                   help="combine saved results files (later ones win for the same data set, "
                        "fold and system) into one table, and run nothing")  # fmt: skip
    # the child side (internal)
    p.add_argument("--child", choices=SYSTEMS, help=argparse.SUPPRESS)
    for name in (
        "--train",
        "--test-x",
        "--test-y",
        "--target",
        "--task",
        "--metric",
        "--out",
        "--workdir",
        "--time-column",
    ):
        p.add_argument(name, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def merge(paths: list[str]) -> int:
    """One table from several saved runs of the bench (e.g. a long run split over sessions)."""
    by_key: dict[tuple[str, int, str], Result] = {}
    systems: list[str] = []
    budgets, folds, infos = set(), set(), []
    for path in paths:
        payload = json.loads(Path(path).read_text())
        budgets.add(payload["budget_s"])
        infos.append(payload["machine"])
        for d in payload["results"]:
            r = Result(**d)
            by_key[(r.dataset, r.fold, r.system)] = r
            folds.add(r.fold)
            if r.system not in systems:
                systems.append(r.system)
    if len(budgets) != 1:
        raise SystemExit(f"the files were run with different budgets {sorted(budgets)}")
    # a split that not every system ran cannot be ranked fairly: leave it out, and say so
    splits = {(r.dataset, r.fold) for r in by_key.values()}
    partial = sorted(s for s in splits if any((*s, sys_) not in by_key for sys_ in systems))
    for split in partial:
        print(f"left out {split[0]} fold {split[1]}: not every system ran on it")
    results = sorted(
        (r for r in by_key.values() if (r.dataset, r.fold) not in partial),
        key=lambda r: (r.dataset, r.fold, systems.index(r.system)),
    )
    folds = {r.fold for r in results}
    budget = budgets.pop()
    args = argparse.Namespace(budget=budget, folds=len(folds))
    info = dict(infos[-1], date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                merged_from=[str(p) for p in paths],
                mlre_commits=sorted({i.get("mlre_commit", "?") for i in infos}))  # fmt: skip
    json_path, md_path = save(info, args, {}, results, systems, final=True, name="merged")
    h1, c1 = detail_cells(results, systems)
    print_table(f"per data set (mean over {len(folds)} fold(s))", h1, c1, {3, 4, 5, 6, 7})
    h2, c2 = summary_cells(summary(results, systems, budget))
    print_table("per system", h2, c2, set(range(1, 10)))
    print(f"saved {json_path.relative_to(REPO_DIR)} and {md_path.name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    if args.merge:
        return merge(args.merge)
    if args.forward or args.source_test:
        args.folds = 1  # one future, or the source's one test split
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    bad = [s for s in systems if s not in SYSTEMS]
    if bad:
        raise SystemExit(f"unknown system(s) {bad}; choose from {', '.join(SYSTEMS)}")
    metas = all_metas(data_root(args.data_dir))
    names = [s.strip() for s in args.datasets.split(",")] if args.datasets else list(metas)
    if args.forward and not args.datasets:
        names = [n for n in names if metas[n].get("time_column")]
    if args.source_test and not args.datasets:
        names = [n for n in names if metas[n].get("test_file")]
    missing = [n for n in names if n not in metas]
    if missing:
        raise SystemExit(f"unknown or causal data set(s) {missing}; known: {', '.join(metas)}")
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    envs = environments(systems)
    for name, env in envs.items():
        where = env.python if env.python else f"UNAVAILABLE: {env.reason}"
        size = f", {env.venv_mb:,.0f} MB" if env.venv_mb else ""
        print(f"  {name}: {where}{size}")
    if args.setup_only:
        return 0
    info = machine_info()
    print(f"{len(names)} data set(s) x {args.folds} fold(s) x {len(systems)} system(s), "
          f"budget {args.budget:g} s, timeout {args.budget * 3 + 60:g} s; "
          f"load average {info['loadavg_at_start']}", flush=True)  # fmt: skip
    results: list[Result] = []
    cache: dict[str, Any] = {}
    try:
        for name in names:
            for seed in range(args.folds):
                try:
                    split = make_split(metas[name], seed, cache, forward=args.forward,
                                       source_test=args.source_test)  # fmt: skip
                except Exception as err:  # an unreadable table must not end the whole run
                    print(f"  {name:<20} fold {seed} SKIPPED: cannot read or split: {err}")
                    continue
                for system in systems:
                    r = run_one(split, system, envs[system], args.budget, args.quiet_wait,
                                args.country)  # fmt: skip
                    results.append(r)
                    wall = f"{r.wall_s:6.1f} s" if r.wall_s is not None else "       "
                    rss = f"{r.peak_rss_mb:7,.0f} MB" if r.peak_rss_mb is not None else ""
                    if r.group_peak_mb is not None:
                        rss += f" (group {r.group_peak_mb:,.0f})"
                    sc = f"{r.metric}={r.score:.4f}" if r.score is not None else r.status
                    load = f" load {r.others_cores:.2f}" if r.others_cores is not None else ""
                    extra = f"  [{r.error[:160]}]" if r.error else ""
                    over = " OVER BUDGET" if r.overrun else ""
                    print(f"  {name:<20} fold {seed} {system:<10} {sc:<22} {wall} {rss}{load}{over}{extra}",
                          flush=True)  # fmt: skip
                    save(info, args, envs, results, systems, final=False)
    except KeyboardInterrupt:
        print("interrupted: saving what was measured", flush=True)
    json_path, md_path = save(info, args, envs, results, systems, final=True)
    h1, c1 = detail_cells(results, systems)
    print_table(f"per data set (mean over {args.folds} fold(s))", h1, c1, {3, 4, 5, 6, 7})
    h2, c2 = summary_cells(summary(results, systems, args.budget))
    print_table("per system", h2, c2, set(range(1, 10)))
    busy = [r for r in results if r.others_cores is not None and r.others_cores > BUSY_THRESHOLD]
    if busy:
        print(f"note: other processes kept more than {BUSY_THRESHOLD} cores busy during "
              f"{len(busy)} of {len(results)} runs (column 'other load')")  # fmt: skip
    print(f"saved {json_path.relative_to(REPO_DIR)} and {md_path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
