"""A latency limit that binds: `mlre run` with and without `constraints.max_latency_ms`.

    .venv/bin/python bench/limits_bench.py                       # adult, 60 s, max 1 ms a row
    .venv/bin/python bench/limits_bench.py --budget 30 --max-latency-ms 0.5

Splits the bundled adult table (examples/data) 80/20 (stratified, seed 0), runs mlre as a user calls it on the
training part twice (no limit; then `constraints: {max_latency_ms: L}`), and measures each
registered model the same way on the test rows: the median milliseconds of one row through
`model.predict_proba` (the compiled path a served model answers with), over 200 rows one at a
time after a first call, its pickled size, and its ROC AUC. Printed: both runs side by side,
the score lost to the limit, and whether the limited model's measured median is under the
limit. The JSON goes to bench/.work/limits/. No target is asserted.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WORK = BENCH_DIR / ".work" / "limits"
DATA = REPO_DIR / "examples" / "data" / "adult.csv.gz"
TARGET = "income-per-year"


def one(train: Any, test: Any, budget: float, limit: float | None) -> dict[str, Any]:
    """One run (with ``limit`` or none) and its model measured on ``test``."""
    from sklearn.metrics import roc_auc_score

    import mlre
    from mlre.search.limits import model_latency_ms, model_size_mb

    settings = {} if limit is None else {"constraints": {"max_latency_ms": limit}}
    started = time.monotonic()
    result = mlre.run(train, target=TARGET, time_budget=budget, track=False, report=False,
                      **settings)  # fmt: skip
    wall = time.monotonic() - started
    X, y = test.drop(columns=[TARGET]), test[TARGET]
    proba = result.model.predict_proba(X)
    positive = list(result.model.classes_).index(sorted(y.unique())[-1])
    auc = roc_auc_score((y == sorted(y.unique())[-1]).to_numpy(), proba[:, positive])
    return {
        "limit_ms": limit,
        "wall_s": round(wall, 1),
        "test_roc_auc": float(auc),
        "holdout_roc_auc": result.holdout_score,
        "p50_ms": model_latency_ms(result.model, X, n=200),
        "size_mb": model_size_mb(result.model),
        "members": [(m["family"], round(m["weight"], 3)) for m in result.ensemble],
        "served_in_run": result.scheme.get("served"),
        "measured_candidates": sum(1 for r in result.leaderboard if "latency_ms" in r),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", type=float, default=60.0, help="seconds per run")
    p.add_argument("--max-latency-ms", type=float, default=1.0, help="the limit of the second run")
    args = p.parse_args()
    import pandas as pd
    from sklearn.model_selection import train_test_split

    df = pd.read_csv(DATA, na_values=["?"])
    train, test = train_test_split(df, test_size=0.2, random_state=0, stratify=df[TARGET])
    rows = [one(train, test, args.budget, None), one(train, test, args.budget, args.max_latency_ms)]
    WORK.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d_%H%M", time.gmtime())
    out = WORK / f"limits_{stamp}_b{args.budget:g}.json"
    out.write_text(json.dumps(rows, indent=2))
    print(f"adult, 80/20 split, {args.budget:g} s a run; one row at a time through the compiled "
          "path, median of 200 test rows")  # fmt: skip
    print("| run | test ROC AUC | p50 ms/row | size MB | members | wall s |")
    print("| --- | ---: | ---: | ---: | --- | ---: |")
    for r in rows:
        name = "no limit" if r["limit_ms"] is None else f"max_latency_ms {r['limit_ms']:g}"
        members = ", ".join(f"{f} {w:.2f}" for f, w in r["members"])
        print(f"| {name} | {r['test_roc_auc']:.4f} | {r['p50_ms']:.3f} | {r['size_mb']:.2f} | "
              f"{members} | {r['wall_s']:.0f} |")  # fmt: skip
    free, bound = rows
    print(f"\nscore lost to the limit: {free['test_roc_auc'] - bound['test_roc_auc']:+.4f} ROC AUC; "
          f"limited p50 {bound['p50_ms']:.3f} ms: "
          f"{'under' if bound['p50_ms'] < args.max_latency_ms else 'NOT under'} the limit")  # fmt: skip
    print(f"saved {out.relative_to(REPO_DIR)}")


if __name__ == "__main__":
    main()
