"""One served row, family by family: the fitted scikit-learn pipeline against mlre's compiled path.

    .venv/bin/python bench/row_bench.py                      # adult (bundled), every family installed
    .venv/bin/python bench/row_bench.py --families linear,catboost --rows 300

A served request is a row of JSON values. Through a fitted pipeline (what a generic model server
such as MLflow's pyfunc runs) each step gives pandas out and checks its input; mlre's model
coerces the row once for all its pipelines and predicts each from one matrix
(``mlre.models.compiled``). For each family one pipeline is fitted on a sample of the data, then
both paths predict the same rows, one request at a time: the table gives each path's median and
99th percentile per row, the ratio, and whether every answer is the same to the bit. The last line
is an ensemble of all of them (one pipeline each, equal weights), as a served model is.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
DATA = BENCH_DIR.parent / "examples" / "data" / "adult.csv.gz"
TARGET = "income-per-year"
FAMILIES = ["linear", "sparse_linear", "lightgbm", "xgboost", "hist_gb", "catboost",
            "random_forest", "extra_trees", "mlp", "knn"]  # fmt: skip


def _fit(family, plan, X: pd.DataFrame, y: np.ndarray, task: str):
    from sklearn.pipeline import Pipeline

    from mlre.features import make_preprocessor

    cut = int(len(X) * 0.8)
    prep = make_preprocessor(plan, family.style)
    X_tr, X_va = prep.fit_transform(X.iloc[:cut]), prep.transform(X.iloc[cut:])
    est = family.build(task, dict(family.portfolio[0]), 0)
    est = family.fit(est, X_tr, y[:cut], X_va, y[cut:], deadline=time.monotonic() + 60)
    return Pipeline([("prep", prep), ("model", est)])


def _per_row(predict, rows: list[pd.DataFrame]) -> tuple[np.ndarray, np.ndarray]:
    """Each row's answer and the seconds it took, after one warm-up call."""
    predict(rows[0])
    out, times = [], []
    for row in rows:
        start = time.perf_counter()
        out.append(predict(row))
        times.append(time.perf_counter() - start)
    return np.concatenate(out), np.asarray(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--train-rows", type=int, default=4000)
    parser.add_argument("--rows", type=int, default=200, help="served rows timed per family")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    import mlre
    from mlre.features import FeaturePlan
    from mlre.models import FAMILIES as ZOO
    from mlre.models.final import Member, MlreModel, member_predict
    from mlre.serve.protocol import records_frame

    warnings.filterwarnings("ignore")
    console = Console(width=120)
    df = pd.read_csv(DATA).sample(args.train_rows + args.rows, random_state=0)
    train, test = df.iloc[: args.train_rows], df.iloc[args.train_rows :]
    contract = mlre.audit(train, target=TARGET, track=False).contract
    plan = FeaturePlan.from_contract(contract)
    classes = np.array(sorted(train[TARGET].unique()), dtype=object)
    y = np.searchsorted(classes, train[TARGET].to_numpy())
    X = train[plan.columns].reset_index(drop=True)
    # each row as a service reads it: the JSON values, untyped
    served = [
        records_frame(json.loads(test.drop(columns=[TARGET]).iloc[[i]].to_json(orient="records")))
        for i in range(len(test))
    ]

    table = Table(title=f"one served row, adult ({args.train_rows:,} training rows)")
    for column in ("family", "pipeline p50 ms", "p99", "mlre p50 ms", "p99", "ratio",
                   "same to the bit", "compiled"):  # fmt: skip
        table.add_column(column, justify="left" if column == "family" else "right")
    pipelines = []
    for name in [n.strip() for n in args.families.split(",") if n.strip()]:
        family = ZOO.get(name)
        if family is None or not family.available():
            console.print(f"[yellow]{name}: not installed, skipped[/]")
            continue
        with console.status(f"fitting {name}"):
            pipeline = _fit(family, plan, X, y, "binary")
        pipelines.append((name, pipeline))
        model = MlreModel("binary", [Member(name, {}, 1.0, [pipeline])], classes, contract, "x")

        def own(row, pipeline=pipeline):
            out = member_predict(pipeline, row, "binary", len(classes))
            return out / out.sum(axis=1, keepdims=True)

        with console.status(f"timing {name}"):
            expected, slow = _per_row(own, served)
            got, fast = _per_row(model.predict_proba, served)
        compiled = model._compiled()[0]
        _row(table, name, slow, fast, np.array_equal(got, expected), compiled)
    if len(pipelines) > 1:
        members = [Member(n, {}, 1.0 / len(pipelines), [p]) for n, p in pipelines]
        model = MlreModel("binary", members, classes, contract, "x")

        def all_own(row):
            out = sum(m.weight * member_predict(m.pipelines[0], row, "binary", 2) for m in members)
            return out / out.sum(axis=1, keepdims=True)

        with console.status("timing the ensemble"):
            expected, slow = _per_row(all_own, served)
            got, fast = _per_row(model.predict_proba, served)
        same = np.allclose(got, expected, rtol=1e-12, atol=0)
        _row(table, f"ensemble of {len(members)}", slow, fast, same, None)
    console.print(table)
    console.print(
        "ratio: pipeline p50 / mlre p50. The ensemble's answers are compared to 1e-12 (its weighted "
        "sum adds in another order); every family's answer to the bit."
    )


def _row(table, name: str, slow: np.ndarray, fast: np.ndarray, same: bool, compiled) -> None:
    ms = lambda t, q: f"{1e3 * np.quantile(t, q):.2f}"  # noqa: E731
    kind = "" if compiled is None else compiled.kind
    table.add_row(
        name, ms(slow, 0.5), ms(slow, 0.99), ms(fast, 0.5), ms(fast, 0.99),
        f"{np.median(slow) / np.median(fast):.1f}x", "yes" if same else "NO",
        kind or ("-" if name.startswith("ensemble") else "no"),
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
