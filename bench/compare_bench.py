"""Does `mlre compare` call a helpful idea "helps" and a useless one not? A simulation.

    .venv/bin/python bench/compare_bench.py                  # 50 repetitions, 500 rows each
    .venv/bin/python bench/compare_bench.py --strength 0.45  # a subtler interaction

Each repetition draws a fresh table of ``--rows`` rows: five standard normal columns x1..x5 and
a binary target whose log-odds are 0.8 * x3 + 0.5 * x4 + s * x1 * x2 (s = ``--strength``, 0.8 by
default). The baseline is mlre's
linear family (logistic regression), which cannot see the interaction. Two ideas run against it
on the same folds, with the default scheme (10x10-fold cross-validation at this size):

* `interaction.py` adds the column x1 * x2: a truly informative feature; it should be called
  "helps" in at least 80% of the repetitions (the power of the test);
* `noise.py` adds a column of random numbers: a no-op; it should be called "helps" in no more
  than 5% of them (the nominal level of the test).

Each idea is compared with the baseline on its own (one `mlre compare` each, on the same folds),
the question a user asks of one idea; with several ideas in one call Holm's correction would
make each verdict more cautious.

Printed: how often each verdict came out, the mean AUC difference, and the targets.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

IDEAS = {
    "interaction.py": (
        '"""The interaction of x1 and x2 as a feature."""\n\n\n'
        "def transform(X):\n"
        '    return X.assign(x1_x2=X["x1"] * X["x2"])\n'
    ),
    "noise.py": (
        '"""A column of random numbers: an idea that cannot help."""\n\n'
        "import numpy as np\n\n\n"
        "def transform(X):\n"
        "    rng = np.random.default_rng(len(X) * 7919 + int(X.index[0]))\n"
        "    return X.assign(noise=rng.standard_normal(len(X)))\n"
    ),
}


def table(rows: int, seed: int, strength: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 5))
    logit = 0.8 * x[:, 2] + 0.5 * x[:, 3] + strength * x[:, 0] * x[:, 1]
    y = rng.random(rows) < 1 / (1 + np.exp(-logit))
    df = pd.DataFrame(x, columns=[f"x{i + 1}" for i in range(5)])
    df["y"] = np.where(y, "yes", "no")
    return df


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repetitions", type=int, default=50)
    p.add_argument("--rows", type=int, default=500)
    p.add_argument("--strength", type=float, default=0.8, help="weight of the interaction")
    args = p.parse_args()

    from mlre.api.compare import compare

    folder = Path(tempfile.mkdtemp(prefix="mlre-compare-bench-"))
    for name, text in IDEAS.items():
        (folder / name).write_text(text)
    verdicts: dict[str, Counter] = {"interaction": Counter(), "noise": Counter()}
    differences: dict[str, list[float]] = {"interaction": [], "noise": []}
    bayes_better: dict[str, int] = {"interaction": 0, "noise": 0}
    started = time.monotonic()
    scheme = ""
    for r in range(args.repetitions):
        df = table(args.rows, seed=r, strength=args.strength)
        for idea in ("interaction", "noise"):  # each idea on its own, as a user would ask
            result = compare(
                df, ["linear", str(folder / f"{idea}.py")], target="y", seed=r, track=False
            )
            scheme = f"{result.repeats}x{result.folds}"
            (c,) = result.comparisons
            verdicts[idea][c.verdict] += 1
            differences[idea].append(c.difference)
            bayes_better[idea] += c.p_better > 0.95
        done = r + 1
        elapsed = time.monotonic() - started
        print(
            f"{done}/{args.repetitions}: interaction {dict(verdicts['interaction'])}, "
            f"noise {dict(verdicts['noise'])} ({elapsed:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    n = args.repetitions
    print(f"\n{n} repetitions of {args.rows} rows, interaction strength {args.strength:g}, "
          f"{scheme}-fold cross-validation, "
          f"baseline: linear (logistic regression), metric roc_auc, each idea compared on its own\n")  # fmt: skip
    print("| idea | helps | no clear difference | equivalent | hurts | mean AUC difference | "
          "P(practically better) > 0.95 |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for idea in ("interaction", "noise"):
        v = verdicts[idea]
        print(
            f"| {idea} | {v['helps'] / n:.0%} | {v['no clear difference'] / n:.0%} | "
            f"{v['equivalent'] / n:.0%} | {v['hurts'] / n:.0%} | "
            f"{np.mean(differences[idea]):+.4f} | {bayes_better[idea] / n:.0%} |"
        )
    power = verdicts["interaction"]["helps"] / n
    false_alarm = verdicts["noise"]["helps"] / n
    print()
    print(f"- informative idea called helps: {power:.0%} (target >= 80%) "
          f"{'met' if power >= 0.8 else 'NOT met'}")  # fmt: skip
    print(f"- no-op idea called helps: {false_alarm:.0%} (target <= 5%) "
          f"{'met' if false_alarm <= 0.05 else 'NOT met'}")  # fmt: skip
    print(f"- {time.monotonic() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
