"""What the report costs: the seconds `mlre run` spends on its diagnostics, against its budget.

    .venv/bin/python bench/report_bench.py                       # four data sets, 60 s each
    .venv/bin/python bench/report_bench.py --datasets adult --budget 120

Each data set runs ``mlre.run(..., track=False, report=<tmp>/report.html)`` in a fresh child
process (so imports count as they would for a user) and prints: the whole run's wall time, the
report's share (diagnostics, importance, learning curve, rendering) and that share as a percent
of the budget. The target is at most 20%. Nothing is asserted; the table is the result.

The data sets are the shared suite, not part of the repository: ../shared/datasets beside it, or
the folder that ``$MLRE_DATASETS`` names.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from suite import datasets_dir  # the module beside this script

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DEFAULT = ["german_credit", "adult", "diamonds", "hpc_jobs"]

CHILD = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
started = time.monotonic()
import mlre
from mlre.report.render import render_html, render_markdown
path, target, budget, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
result = mlre.run(path, target=target, time_budget=budget, track=False, force=True, report=out)
t0 = time.monotonic()
render_html(result.report), render_markdown(result.report)
render = time.monotonic() - t0
print(json.dumps({
    "wall": time.monotonic() - started, "run": result.seconds, "collect": result.report["seconds"],
    "render": render, "timings": result.report["timings"], "metric": result.metric,
    "holdout": result.holdout_score, "html_mb": len(open(out, "rb").read()) / 1e6,
}))
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=",".join(DEFAULT))
    p.add_argument("--budget", type=float, default=60.0)
    args = p.parse_args()
    root = datasets_dir(need=args.datasets.split(","))
    rows = []
    for name in args.datasets.split(","):
        meta = json.loads((root / name / "meta.json").read_text())
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    str(root / name / "data.csv.gz"),
                    meta["target"],
                    str(args.budget),
                    str(Path(tmp) / "report.html"),
                ],
                capture_output=True,
                text=True,
                cwd=tmp,
                check=False,
            )
            wall = time.perf_counter() - started
        if done.returncode != 0:
            print(f"{name}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        facts = json.loads(done.stdout.strip().splitlines()[-1])
        share = facts["collect"] + facts["render"]
        rows.append((name, args.budget, wall, share, 100 * share / args.budget, facts))
    print("| data set | budget (s) | wall (s) | report (s) | % of budget | largest parts |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, budget, wall, share, pct, facts in rows:
        parts = sorted(facts["timings"].items(), key=lambda kv: -kv[1])[:3]
        top = ", ".join(f"{k} {v:.1f}" for k, v in parts) + f", render {facts['render']:.1f}"
        print(f"| {name} | {budget:g} | {wall:.1f} | {share:.1f} | {pct:.0f}% | {top} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
