"""Causal estimates against a published answer: the LaLonde / Dehejia-Wahba NSW data.

    .venv/bin/python bench/causal_bench.py
    .venv/bin/python bench/causal_bench.py --seeds 0,1,2        # the spread over cross-fit seeds

The NSW job-training programme was a randomised experiment: in its Dehejia-Wahba sample
(lalonde_nsw_dw) the difference in 1978 earnings, $1,794 (SE 671), is the effect on the
treated. The observational versions keep the same 185 treated men and replace the experimental
controls with survey respondents (PSID-1: 2,490, CPS-1: 15,992), who are older and richer: the
naive difference is badly negative. `mlre causal --estimand ATT` runs every estimator on them
with the covariates of meta.json. Target: the doubly robust (AIPW) and double-ML estimates fall
inside the experimental estimate's 95% interval, and the naive difference is flagged as
confounded. The experimental samples themselves are run too (every estimator should agree with
the difference in means there).

The tables are read from the shared suite, not part of the repository: ../shared/datasets beside
it, or the folder that ``$MLRE_DATASETS`` names.
"""

from __future__ import annotations

import argparse
import json
import time

from suite import datasets_dir  # the module beside this script

OBSERVATIONAL = ["lalonde_dw_psid", "lalonde_dw_cps"]
EXPERIMENTAL = ["lalonde_nsw_dw", "lalonde_nsw_original"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0", help="comma-separated cross-fit seeds")
    p.add_argument("--datasets", default=",".join(OBSERVATIONAL + EXPERIMENTAL))
    args = p.parse_args()
    names = args.datasets.split(",")
    datasets = datasets_dir(need=["lalonde_nsw_dw", *names])

    import pandas as pd

    import mlre
    from mlre.causal.estimators import number

    seeds = [int(s) for s in args.seeds.split(",")]
    reference = json.loads((datasets / "lalonde_nsw_dw" / "meta.json").read_text())
    rows, verdicts = [], []
    for name in names:
        meta = json.loads((datasets / name / "meta.json").read_text())
        known = meta["known_effect"]
        se = known.get("standard_error") or reference["known_effect"]["standard_error"]
        low, high = known["value"] - 1.96 * se, known["value"] + 1.96 * se
        df = pd.read_csv(datasets / name / "data.csv.gz")
        for seed in seeds:
            started = time.monotonic()
            result = mlre.causal_effect(
                df,
                treatment=meta["treatment"],
                outcome=meta["outcome"],
                confounders=meta["covariates"],
                estimand="ATT",
                seed=seed,
                track=False,
            )
            seconds = time.monotonic() - started
            confounded = any(f.check == "causal_confounding" for f in result.findings)
            for e in [result.naive["ATT"], *result.estimates["ATT"]]:
                inside = low <= e.value <= high
                rows.append(
                    f"| {name} | {seed} | {e.label} | {number(e.value)} | "
                    f"[{number(e.low)}, {number(e.high)}] | {e.rows:,} | "
                    f"{'yes' if inside else 'no'} |"
                )
            dr = result.estimate("aipw", "ATT")
            dml = result.estimate("dml", "ATT")
            verdicts.append(
                f"| {name} | {seed} | {number(known['value'])} [{number(low)}, {number(high)}] | "
                f"{number(dr.value)} {'in' if low <= dr.value <= high else 'OUT'} | "
                f"{number(dml.value)} {'in' if low <= dml.value <= high else 'OUT'} | "
                f"{'flagged' if confounded else 'not flagged'} | "
                f"{', '.join(f'{k}={v}' for k, v in result.nuisance.families.items())} | "
                f"{seconds:.1f} |"
            )
            print(f"{name} seed {seed}: {seconds:.1f} s", flush=True)
    print("\n## ATT of each estimator (95% interval), beside the experimental answer\n")
    print("| data | seed | estimator | ATT | 95% CI | rows | inside the experimental CI |")
    print("|---|---:|---|---:|---|---:|---|")
    print("\n".join(rows))
    print("\n## Target: doubly robust and double ML inside the experimental 95% CI\n")
    print("| data | seed | experimental ATT [95% CI] | doubly robust | double ML | naive "
          "difference | nuisance families | seconds |")  # fmt: skip
    print("|---|---:|---|---|---|---|---|---:|")
    print("\n".join(verdicts))
    print(f"\nmlre {mlre.__version__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
