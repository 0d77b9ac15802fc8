"""Fairness on adult: the mlre model's disparities by sex, and what each mitigation costs.

    .venv/bin/python bench/fairness_bench.py                 # 60 s run on adult, then mitigate
    .venv/bin/python bench/fairness_bench.py --budget 30

Trains an `mlre run` on adult (the shared suite's, not part of the repository:
../shared/datasets/adult, or $MLRE_DATASETS/adult) naming sex and race as sensitive,
prints accuracy, AUC, demographic parity and equalized odds differences by sex on the holdout,
then `mlre mitigate` for demographic parity by sex: the model as it is, thresholds per group and
the best family refitted under the constraint, all on the same half of the holdout. Target: a
mitigated model with demographic parity difference below 0.02 losing at most 2 points of
accuracy, or the Pareto front showing why that is not reachable. Then audits a model of the
second fairness data set (compas_recidivism) by race.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from suite import datasets_dir  # the module beside this script


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=60.0)
    args = p.parse_args()
    datasets = datasets_dir(need=["adult", "compas_recidivism"])

    import mlre
    from mlre.api.fairness import fairness, mitigate

    os.chdir(tempfile.mkdtemp(prefix="mlre-fairness-bench-"))
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    started = time.monotonic()
    run = mlre.run(
        datasets / "adult" / "data.csv.gz",
        target="income-per-year",
        time_budget=args.budget,
        sensitive=["sex", "race"],
        report=False,
    )
    f = run.fairness
    by = {(d["column"], d["name"]): d["value"] for d in f["disparities"]}
    print(f"adult, {args.budget:g} s run, holdout of {run.scheme['holdout_rows']:,} rows\n")
    print("| model | accuracy | ROC AUC | DP difference by sex | EO difference by sex |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| mlre ({', '.join(m['family'] for m in run.ensemble)}) | {run.holdout['accuracy']:.4f} | "
        f"{run.holdout['roc_auc']:.4f} | {by['sex', 'demographic_parity_difference']:.3f} | "
        f"{by['sex', 'equalized_odds_difference']:.3f} |"
    )
    result = mitigate(run.run_id, sensitive="sex", constraint="demographic_parity")
    base = next(o for o in result.options if o.kind == "unmitigated")
    print("\nmitigation for demographic parity by sex, on the evaluation half of the holdout\n")
    print("| option | accuracy | balanced accuracy | DP difference | EO difference | Pareto |")
    print("|---|---:|---:|---:|---:|---|")
    for o in result.options:
        print(
            f"| {o.name} | {o.accuracy:.4f} | {o.balanced_accuracy:.4f} | "
            f"{o.demographic_parity_difference:.3f} | {o.equalized_odds_difference:.3f} | "
            f"{'yes' if o.name in result.front else ''} |"
        )
    good = [
        o
        for o in result.options
        if o.kind != "unmitigated"
        and o.demographic_parity_difference < 0.02
        and base.accuracy - o.accuracy <= 0.02
    ]
    print()
    if good:
        best = max(good, key=lambda o: o.accuracy)
        print(f"- target met: {best.name}, DP difference {best.demographic_parity_difference:.3f} "
              f"at {100 * (base.accuracy - best.accuracy):.1f} points of accuracy")  # fmt: skip
    else:
        print("- target NOT met: no option has DP difference < 0.02 within 2 points of accuracy; "
              f"Pareto front: {', '.join(result.front)}")  # fmt: skip

    import pandas as pd

    compas = pd.read_csv(datasets / "compas_recidivism" / "data.csv.gz")
    cut = int(len(compas) * 0.8)
    model = mlre.run(
        compas.iloc[:cut], target="two_year_recid", time_budget=args.budget / 2, report=False
    )
    audit = fairness(model.model_uri, compas.iloc[cut:], sensitive=["race", "sex"])
    print("\ncompas_recidivism, audited by race and sex on the last 20% of rows\n")
    print("| column | disparity | value | limit | breached |")
    print("|---|---|---:|---:|---|")
    for d in audit.disparities:
        if " × " in d.column:
            continue
        limit = "" if d.limit is None else f"{d.limit:g}"
        print(
            f"| {d.column} | {d.name} | {d.value:.3f} | {limit} | {'yes' if d.breached else ''} |"
        )
    for proxy in audit.proxies:
        print(f"- proxy: {proxy.feature} predicts {proxy.sensitive} (AUC {proxy.auc:.2f})")
    print(f"\n{time.monotonic() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
