"""``mlre run --seeds N``: the whole run repeated with N seeds, and how much its score moves.

A seed drives the holdout split, the folds, the search and the models, so the spread of the
holdout score over seeds is the noise any claimed improvement must beat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from mlre.errors import InputError
from mlre.findings import Finding, Severity

if TYPE_CHECKING:
    from mlre.api.run import RunResult


@dataclass
class SeedsResult:
    """Every seed's run and the spread of their scores."""

    metric: str
    seeds: list[int]
    runs: list[RunResult]
    run_id: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def holdout(self) -> np.ndarray:
        return np.array([r.holdout_score for r in self.runs])

    @property
    def search(self) -> np.ndarray:
        return np.array([r.search_score for r in self.runs])

    def spread(self) -> dict[str, float]:
        """Mean, standard deviation, range and the 95% interval of the mean holdout score."""
        h = self.holdout
        sd = float(h.std(ddof=1)) if len(h) > 1 else 0.0
        half = float(stats.t.ppf(0.975, len(h) - 1) * sd / np.sqrt(len(h))) if len(h) > 1 else 0.0
        return {
            "mean": float(h.mean()),
            "sd": sd,
            "min": float(h.min()),
            "max": float(h.max()),
            "low": float(h.mean()) - half,
            "high": float(h.mean()) + half,
            "search_mean": float(self.search.mean()),
        }

    def sentence(self) -> str:
        s = self.spread()
        return (
            f"over {len(self.seeds)} seeds the holdout {self.metric} is {s['mean']:.4f} ± "
            f"{s['sd']:.4f} (standard deviation; range {s['min']:.4f}-{s['max']:.4f}; 95% interval "
            f"of the mean [{s['low']:.4f}, {s['high']:.4f}]): a difference between two ideas "
            f"smaller than about {2 * s['sd']:.4f} is within the noise of a single run"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "seeds": self.seeds,
            "runs": [
                {
                    "seed": seed,
                    "run_id": r.run_id,
                    "holdout": r.holdout_score,
                    "search": r.search_score,
                    "model_version": r.model_version,
                }
                for seed, r in zip(self.seeds, self.runs, strict=True)
            ],
            "spread": self.spread(),
            "sentence": self.sentence(),
            "run_id": self.run_id,
        }


def run_seeds(
    data: Any, *, seeds: int, seed: int | None = None, track: bool = True, **kwargs: Any
) -> SeedsResult:
    """``mlre.run`` once per seed (``seed``, ``seed + 1``, ...), each a whole tracked run; the
    report is written for the first only. Returns the runs and the spread of their scores."""
    from mlre.api.run import run

    if seeds < 2:
        raise InputError("--seeds needs at least 2 seeds to measure a spread")
    first = 0 if seed is None else seed
    progress = kwargs.pop("progress", None)
    report = kwargs.pop("report", None)
    runs: list[RunResult] = []
    chosen = list(range(first, first + seeds))
    for i, s in enumerate(chosen):
        step = None if progress is None else (lambda label, s=s: progress(f"seed {s}: {label}"))
        runs.append(
            run(
                data,
                seed=s,
                track=track,
                progress=step,
                report=report if i == 0 else False,
                **kwargs,
            )
        )
    result = SeedsResult(runs[0].metric, chosen, runs)
    result.findings.append(
        Finding(
            severity=Severity.INFO,
            check="seed_variance",
            message=result.sentence(),
            evidence=result.spread(),
        )
    )
    if track:
        result.run_id = _record(runs[0].project, result)
    return result


def _record(project: str, result: SeedsResult) -> str:
    from mlre.track import tracked_run

    with tracked_run(project, f"seeds x{len(result.seeds)}", {"mlre.kind": "seeds"}) as parent:
        spread = result.spread()
        parent.log_params({"seeds": ", ".join(map(str, result.seeds)), "metric": result.metric})
        parent.log_metrics({f"holdout_{result.metric}_{k}": v for k, v in spread.items()})
        parent.set_tags(
            {f"mlre.seed_run.{s}": r.run_id for s, r in zip(result.seeds, result.runs, strict=True)}
        )
        parent.log_json(result.to_dict(), "seeds.json")
        return parent.run_id
