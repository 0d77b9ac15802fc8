"""Scale-out: trials a minute on Ray's two workers against one local worker, and the memory a
streamed audit and a streamed batch prediction need for a Parquet file three times larger than
the memory they are given.

    .venv/bin/python bench/scale_bench.py                          # both parts
    .venv/bin/python bench/scale_bench.py --part throughput --seconds 120
    .venv/bin/python bench/scale_bench.py --part memory --rows 26000000

Throughput: the search's own scheduler (``mlre.search.schedule.run_trials``) fits an endless
cycle of portfolio configurations (LightGBM, XGBoost, extremely randomised trees, linear) on
adult (48,842 rows, 4 fixed folds; read from the shared suite, not part of the repository:
../shared/datasets/adult, or $MLRE_DATASETS/adult) for --seconds on each backend in
turn: the local executor with one worker thread, then Ray started with two CPUs (its start is
timed apart; its workers' first imports count). Trials a minute = finished trials / time to
the last one. Target: Ray with 2 workers at least 1.7x the local backend with 1.

Memory: a Parquet file of --rows rows (8 numbers, a 20-level category, a binary label) is
written in row groups; a model (--family, default the regularised linear one: memory hardly
depends on the model, time does) is trained on 50,000 of its rows and registered; then
`mlre audit FILE --stream` (DuckDB limited to --cap) and `mlre predict MODEL FILE -o OUT
--batch-rows 100000` each run as a child process whose peak RSS is read from wait4. For
scale, the peak RSS of reading the file whole with pandas is shown too. Target: peak RSS
under 2 GB for a file at least 3x the cap.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
MIX = [("lightgbm", 0), ("xgboost", 0), ("extra_trees", 0), ("linear", 0), ("lightgbm", 1)]


# --------------------------------------------------------------------------- throughput


def adult_trials():
    """adult as the search sees it: raw features, encoded target, 4 folds."""
    from suite import datasets_dir

    import mlre
    from mlre.data.split import cv_folds
    from mlre.evaluate.metrics import get_metric
    from mlre.features.pipeline import FeaturePlan
    from mlre.search.trial import TrialData

    datasets = datasets_dir(need=["adult"])
    df = pd.read_csv(datasets / "adult" / "data.csv.gz")
    target = json.loads((datasets / "adult" / "meta.json").read_text())["target"]
    contract = mlre.audit(df, target=target, track=False).contract
    plan = FeaturePlan.from_contract(contract)
    classes = sorted(df[target].astype(str).unique())
    y = np.searchsorted(np.array(classes), df[target].astype(str).to_numpy())
    folds = cv_folds(y, task="binary", k=4, seed=0)
    return TrialData(df[plan.columns], y, folds, "binary", 2, plan, get_metric("roc_auc"), 0)


def throughput(executor, data, seconds: float) -> dict:
    """Trials fitted on ``executor`` in ``seconds``: count, trials a minute, fold seconds."""
    from mlre.models.families import FAMILIES
    from mlre.search.schedule import Launch, run_trials

    shared = executor.put(data)
    started = time.monotonic()
    end = started + seconds

    def source(i: int):
        if time.monotonic() >= end:
            return None
        name, index = MIX[i % len(MIX)]
        family = FAMILIES[name]
        return Launch(family, dict(family.portfolio[index]), "portfolio", end + 600)

    done = run_trials(source, data, executor, shared=shared)
    elapsed = time.monotonic() - started
    ok = [t for t in done if t.status == "ok"]
    return {
        "trials": len(ok),
        "failed": len(done) - len(ok),
        "seconds": elapsed,
        "per_minute": 60 * len(ok) / elapsed,
        "fold_fit_seconds": sum(t.fit_seconds for t in ok) / max(1, 4 * len(ok)),
    }


def run_throughput(seconds: float) -> list[dict]:
    from machine import busy_cores

    from mlre.search.executor import LocalExecutor, RayExecutor

    data = adult_trials()
    rows = []
    busy = busy_cores()
    local = LocalExecutor(1)
    try:
        rows.append({"backend": "local, 1 worker", "busy_before": busy, "start_s": 0.0}
                    | throughput(local, data, seconds))  # fmt: skip
    finally:
        local.close()
    busy = busy_cores()
    t0 = time.monotonic()
    os.environ["MLRE_WORKERS"] = "2"
    ray = RayExecutor("auto")
    start_s = time.monotonic() - t0
    try:
        rows.append({"backend": f"Ray, {ray.slots} workers", "busy_before": busy,
                     "start_s": start_s} | throughput(ray, data, seconds))  # fmt: skip
    finally:
        ray.close()
    return rows


# --------------------------------------------------------------------------- driver


def driver_costs(data, repeats: int = 20) -> list[dict]:
    """What the driver spends per trial, whatever the number of workers: taking in a trial's
    results (its fitted fold models and predictions, as they arrive from a worker), logging
    the trial to MLflow (a child run in a SQLite store) and one ask/tell of the tuner."""
    import pickle
    import tempfile

    import optuna

    from mlre.api.run_tracking import trial_logger
    from mlre.models.families import FAMILIES
    from mlre.search.schedule import run_trial
    from mlre.track import tracked_run

    family = FAMILIES["lightgbm"]
    trial = run_trial(0, family, dict(family.portfolio[0]), data, phase="portfolio",
                      deadline=time.monotonic() + 600)  # fmt: skip
    payload = pickle.dumps((trial.pipelines, trial.oof), protocol=5)
    t0 = time.perf_counter()
    for _ in range(repeats):
        pickle.loads(payload)
    receive = (time.perf_counter() - t0) / repeats
    with tempfile.TemporaryDirectory() as tmp:
        old = os.environ.get("MLFLOW_TRACKING_URI")
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
        try:
            with tracked_run("scale_bench", "run", {"mlre.kind": "run"}) as parent:
                log = trial_logger(parent, "roc_auc", lambda _: None)
                log(trial)  # the first creates the experiment's tables
                t0 = time.perf_counter()
                for _ in range(repeats):
                    log(trial)
                logging_s = (time.perf_counter() - t0) / repeats
        finally:
            if old is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = old
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=0, multivariate=True, constant_liar=True)
    study = optuna.create_study(sampler=sampler)
    for _ in range(100):
        t = study.ask()
        family.space(t, "binary")
        study.tell(t, float(np.random.default_rng(t.number).random()))
    t0 = time.perf_counter()
    for _ in range(repeats):
        t = study.ask()
        family.space(t, "binary")
        study.tell(t, 0.5)
    tuner = (time.perf_counter() - t0) / repeats
    return [
        {"cost": "take in a trial's results (4 LightGBM fold models + OOF)",
         "ms": 1000 * receive, "note": f"{len(payload) / 2**20:.1f} MB over the wire"},
        {"cost": "log the trial to MLflow (child run, SQLite)", "ms": 1000 * logging_s, "note": ""},
        {"cost": "tuner ask + tell (TPE, 100 trials of history)", "ms": 1000 * tuner, "note": ""},
    ]  # fmt: skip


# --------------------------------------------------------------------------- memory


def write_file(path: Path, rows: int, seed: int = 0) -> float:
    """A Parquet file of ``rows`` rows in 1M-row groups; returns its in-memory size in bytes
    as pandas would hold it (measured on the first group, scaled)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    levels = np.array([f"level_{i:02d}" for i in range(20)])
    writer = None
    per_row = 0.0
    try:
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            x = rng.normal(size=(n, 8))
            cat = levels[rng.integers(0, 20, n)]
            logit = x[:, 0] - 0.7 * x[:, 1] + 0.4 * x[:, 2] * x[:, 3] + (cat == "level_03") - 0.2
            y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
            frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(8)])
            frame["segment"], frame["y"] = cat, y
            if not per_row:
                per_row = frame.memory_usage(deep=True).sum() / n
            table = pa.Table.from_pandas(frame, preserve_index=False)
            writer = writer or pq.ParquetWriter(path, table.schema, compression="snappy")
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return per_row * rows


def peak_rss(args: list[str], env: dict) -> tuple[float, float, int, str]:
    """Peak RSS (MB) and wall seconds of a child process, its exit code and output's tail."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        tail = log.read().decode(errors="replace")[-400:]
    return usage.ru_maxrss / 1024, time.monotonic() - started, proc.returncode, tail


def run_memory(rows: int, cap: str, family: str) -> list[dict]:
    py = sys.executable
    mlre_cli = str(Path(py).with_name("mlre"))
    out = []
    with tempfile.TemporaryDirectory(prefix="mlre-scale-") as tmp:
        folder = Path(tmp)
        path = folder / "big.parquet"
        t0 = time.monotonic()
        in_memory = write_file(path, rows)
        written_s = time.monotonic() - t0
        on_disk = path.stat().st_size
        env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{folder}/mlflow.db",
                   MLRE_STREAM_MEMORY=cap)  # fmt: skip
        train = (
            "import pandas as pd, pyarrow.parquet as pq, mlre;"
            f"df = pq.ParquetFile('{path}').read_row_group(0).to_pandas().sample(50000, "
            "random_state=0);"
            f"mlre.run(df, target='y', time_budget=40, families=['{family}'], report=False,"
            " project='scale_bench')"
        )
        trained = subprocess.run([py, "-c", train], env=env, cwd=folder, capture_output=True,
                                 text=True)  # fmt: skip
        if trained.returncode:
            raise SystemExit(f"training the model failed:\n{trained.stderr[-2000:]}")
        jobs = [
            ("mlre audit --stream", [mlre_cli, "audit", str(path), "--target", "y", "--stream",
                                     "--no-track"]),
            ("mlre predict -o (streamed)", [mlre_cli, "predict", "models:/scale_bench@candidate",
                                            str(path), "-o", str(folder / "preds.parquet"),
                                            "--batch-rows", "100000"]),
            ("pandas.read_parquet (whole file, for scale)",
             [py, "-c", f"import pandas as pd; pd.read_parquet('{path}')"]),
        ]  # fmt: skip
        for label, args in jobs:
            rss, secs, code, tail = peak_rss(args, env)
            out.append({"job": label, "peak_rss_mb": rss, "seconds": secs, "exit": code,
                        "tail": tail if code else ""})  # fmt: skip
        meta = {
            "rows": rows,
            "on_disk_mb": on_disk / 2**20,
            "in_memory_mb": in_memory / 2**20,
            "cap": cap,
            "write_seconds": written_s,
        }
    return [meta, *out]


def main() -> None:
    from suite import datasets_dir

    from mlre.data.load import parse_size

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["throughput", "memory", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--rows", type=int, default=26_000_000)
    parser.add_argument("--cap", default="512MB", help="DuckDB's memory limit for the audit")
    parser.add_argument("--family", default="linear", help="The model family predicting")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    results: dict = {}
    if args.part in ("throughput", "both"):
        datasets_dir(need=["adult"])  # before the memory part spends its minutes
        rows = run_throughput(args.seconds)
        results["throughput"] = rows
        base = rows[0]["per_minute"]
        print(f"\nTrials a minute on adult (48,842 rows, 4 folds), {args.seconds:.0f} s each")
        print(f"{'backend':<18}{'trials':>8}{'per min':>10}{'x local':>9}{'fold fit s':>12}"
              f"{'start s':>9}{'busy cores before':>19}")  # fmt: skip
        for r in rows:
            print(f"{r['backend']:<18}{r['trials']:>8}{r['per_minute']:>10.1f}"
                  f"{r['per_minute'] / base:>9.2f}{r['fold_fit_seconds']:>12.2f}"
                  f"{r['start_s']:>9.1f}{r['busy_before'] or 0:>19.2f}")  # fmt: skip
        ratio = rows[1]["per_minute"] / base
        print(f"target Ray/local >= 1.7: {'met' if ratio >= 1.7 else 'NOT met'} ({ratio:.2f})")
        costs = driver_costs(adult_trials())
        results["driver"] = costs
        print("\nWhat the driver spends per trial (it does this alone, for every worker)")
        for c in costs:
            print(f"{c['cost']:<58}{c['ms']:>9.1f} ms  {c['note']}")
    if args.part in ("memory", "both"):
        meta, *rows = run_memory(args.rows, args.cap, args.family)
        results["memory"] = [meta, *rows]
        ratio = meta["on_disk_mb"] * 2**20 / parse_size(args.cap)
        print(f"\nStreaming over a Parquet file of {meta['rows']:,} rows: "
              f"{meta['on_disk_mb']:,.0f} MB on disk ({ratio:.1f}x the {args.cap} cap), "
              f"{meta['in_memory_mb']:,.0f} MB as a pandas frame")  # fmt: skip
        print(f"{'job':<46}{'peak RSS MB':>12}{'seconds':>9}{'exit':>6}")
        for r in rows:
            print(f"{r['job']:<46}{r['peak_rss_mb']:>12,.0f}{r['seconds']:>9.1f}{r['exit']:>6}")
            if r["tail"]:
                print("   " + r["tail"].replace("\n", "\n   "))
        worst = max(r["peak_rss_mb"] for r in rows[:2])
        print(f"target peak RSS < 2 GB at >= 3x the cap: "
              f"{'met' if worst < 2048 and ratio >= 3 else 'NOT met'} ({worst:,.0f} MB)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
