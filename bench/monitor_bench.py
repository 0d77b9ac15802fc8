"""Monitoring: does `mlre monitor` see known shifts, stay quiet without them, estimate the
score without labels, and keep up with a large prediction log?

    .venv/bin/python bench/monitor_bench.py                    # 20 repetitions per strength
    .venv/bin/python bench/monitor_bench.py --repeats 50 --log-rows 1000000

A model of adult (the shared suite's, not part of the repository: ../shared/datasets/adult, or
$MLRE_DATASETS/adult) is trained with `mlre run` (30 s) and registered in
a temporary MLflow store. Each repetition draws a reference and a current sample of 3,000 rows
from the rows the model did not train on, then shifts the current one:

- covariate shift: rows drawn with weights exp(s * z(age)) (s = 0 is no shift): detected when
  `age` is flagged as drifted; the error of the label-free ROC AUC estimate against the truth
  is measured on the same samples;
- prior shift: the share of high earners moved from the population's to s points more:
  detected when the model's prediction drift is flagged;
- concept shift: the labels of a share s of the rows flipped (inputs unchanged): detected when
  the score on the labelled current rows is worse than the reference's beyond its interval.

False alarm rate: any alert (an error finding) on unshifted samples (target at most 5%). Then a
prediction log of --log-rows rows (written straight to the service's SQLite schema) is
monitored against the training table: wall time (target under 30 s for a million rows).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from suite import datasets_dir  # the module beside this script

TARGET = "income-per-year"
NAME = "monitor_bench"


def train(df: pd.DataFrame, budget: float) -> pd.DataFrame:
    """Train and register the model on half of the rows; the other half, for sampling."""
    import mlre

    train_rows = df.sample(frac=0.5, random_state=0)
    rest = df.drop(train_rows.index).reset_index(drop=True)
    path = Path("train.csv")
    train_rows.to_csv(path, index=False)
    mlre.run(path, target=TARGET, time_budget=budget, project=NAME, report=False)
    return rest


def sample(rest: pd.DataFrame, n: int, rng: np.random.Generator, weights=None) -> pd.DataFrame:
    p = None if weights is None else weights / weights.sum()
    return rest.iloc[rng.choice(len(rest), n, replace=False, p=p)].reset_index(drop=True)


def prior_shift(rest: pd.DataFrame, n: int, rng, points: float) -> pd.DataFrame:
    high = (rest[TARGET].astype(str).str.strip() == ">50K").to_numpy()
    share = min(0.95, high.mean() + points)
    k = round(share * n)
    pos = rest[high].iloc[rng.choice(high.sum(), k, replace=False)]
    neg = rest[~high].iloc[rng.choice((~high).sum(), n - k, replace=False)]
    return pd.concat([pos, neg]).sample(frac=1, random_state=int(rng.integers(1e9)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--rows", type=int, default=3000)
    p.add_argument("--budget", type=float, default=30.0)
    p.add_argument("--log-rows", type=int, default=1_000_000)
    args = p.parse_args()
    datasets = datasets_dir(need=["adult"])

    from mlre.api.monitor import watch

    os.chdir(tempfile.mkdtemp(prefix="mlre-monitor-bench-"))
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    df = pd.read_csv(datasets / "adult" / "data.csv.gz", na_values=["?"])
    df[TARGET] = df[TARGET].astype(str).str.strip()
    print(f"training the model ({args.budget:g} s)...", flush=True)
    rest = train(df, args.budget)
    z_age = ((rest["age"] - rest["age"].mean()) / rest["age"].std()).to_numpy()
    rng = np.random.default_rng(0)
    rows = []
    quiet_alerts = quiet_runs = 0

    def check(ref, cur, **kw):
        return watch(ref, cur, model=NAME, track=False, **kw)

    for kind, strengths in (
        ("covariate shift (age)", [0.0, 0.1, 0.25, 0.5, 1.0]),
        ("prior shift (label, points)", [0.05, 0.1, 0.2]),
        ("concept shift (labels flipped)", [0.05, 0.1, 0.2]),
    ):
        for s in strengths:
            hits, auc_err, widths = 0, [], []
            for _ in range(args.repeats):
                ref = sample(rest, args.rows, rng)
                if kind.startswith("covariate"):
                    cur = sample(rest, args.rows, rng, np.exp(s * z_age))
                    truth = check(ref, cur)
                    est = check(ref, cur.drop(columns=TARGET))
                    hits += "age" in [c.column for c in est.drift.drifted] if s else est.alert
                    if s == 0:
                        quiet_runs += 1
                        quiet_alerts += est.alert
                    auc_err.append(abs(est.estimated["roc_auc"].value - truth.windows[0].value))
                    widths.append(est.estimated["roc_auc"].high - est.estimated["roc_auc"].low)
                elif kind.startswith("prior"):
                    cur = prior_shift(rest, args.rows, rng, s).drop(columns=TARGET)
                    r = check(ref, cur)
                    hits += r.drift.prediction is not None and r.drift.prediction.drifted
                else:
                    cur = sample(rest, args.rows, rng)
                    flip = rng.random(len(cur)) < s
                    cur.loc[flip, TARGET] = np.where(
                        cur.loc[flip, TARGET] == ">50K", "<=50K", ">50K"
                    )
                    r = check(ref, cur)
                    hits += any(
                        f.check == "performance_window" and f.severity.value == "error"
                        for f in r.findings
                    )
            row = {"shift": kind, "strength": s, "detected": hits / args.repeats}
            if auc_err:
                row["auc_estimate_error"] = float(np.mean(auc_err))
                row["auc_interval_width"] = float(np.mean(widths))
            rows.append(row)
            print(json.dumps(row), flush=True)

    print("\n## Detection rate per shift and strength\n")
    print("| shift | strength | detected | label-free ROC AUC error (mean abs) | interval width |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        err = f"{r['auc_estimate_error']:.4f}" if "auc_estimate_error" in r else ""
        width = f"{r['auc_interval_width']:.4f}" if "auc_interval_width" in r else ""
        label = "false alarms (any alert)" if r["strength"] == 0 else f"{r['detected']:.0%}"
        value = f"{quiet_alerts / max(quiet_runs, 1):.0%}" if r["strength"] == 0 else label
        print(f"| {r['shift']} | {r['strength']:g} | {value} | {err} | {width} |")
    print(f"\nfalse alarm rate on unshifted samples: {quiet_alerts}/{quiet_runs}")

    # ------------------------------------------------------------------ a large prediction log
    n = args.log_rows
    if n <= 0:
        return 0
    log_path = Path("predictions.db")
    from mlre.serve.predlog import PredictionLog

    PredictionLog(log_path)  # the service's schema
    print(f"\nwriting a prediction log of {n:,} rows...", flush=True)
    features = rest.drop(columns=TARGET)
    from mlre.track.registry import load_model

    model = load_model(f"models:/{NAME}@candidate").model
    picks = rng.integers(0, len(features), n)
    p_rest = model.predict_proba(features)[:, list(model.classes_).index(">50K")]
    draws = features.iloc[picks].reset_index(drop=True)
    inputs = draws.to_json(orient="records", lines=True).splitlines()
    p_high = p_rest[picks]  # what the model answered for those rows
    import sqlite3

    db = sqlite3.connect(log_path)
    now = time.time()
    batch = 100_000
    for start in range(0, n, batch):
        chunk = []
        for i in range(start, min(start + batch, n)):
            out = (
                f'[{{"prediction":"{">50K" if p_high[i] >= 0.5 else "<=50K"}",'
                f'"probabilities":{{"<=50K":{1 - p_high[i]},">50K":{p_high[i]}}}}}]'
            )
            chunk.append(
                (
                    uuid.uuid4().hex,
                    now - (n - i) * 0.01,
                    NAME,
                    "1",
                    "champion",
                    f"[{inputs[i]}]",
                    out,
                    5.0,
                    None,
                )
            )
        db.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", chunk)
        db.commit()
    db.close()
    print(f"log: {log_path.stat().st_size / 1e6:,.0f} MB", flush=True)
    started = time.perf_counter()
    r = watch("training", "all", model=NAME, prediction_log=log_path, track=False)
    seconds = time.perf_counter() - started
    print(
        f"\nmonitoring {n:,} logged predictions against the training table: {seconds:.1f} s "
        f"({len(r.drift.columns)} columns, {len(r.drift.drifted)} drifted, alert={r.alert})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
