"""Limits the served model must respect: its median time for one row through the compiled path
(``max_latency_ms``) and its pickled size (``max_model_mb``).

The ensemble selection keeps only candidates that fit alone and drops its weakest members until
the whole fits (a model of many members pays for each); the served model is measured again at
the end, on holdout rows, and trimmed (fewer bags, then fewer members) if the estimate was off.
A table where no candidate fits fails the run, naming the fastest (or smallest) candidate.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlre.errors import GateError
from mlre.models.final import Member, MlreModel
from mlre.search.spill import loaded
from mlre.search.trial import TrialResult
from mlre.spec import Constraints, Task

#: One-row predictions timed per measurement (after one that compiles and warms up).
TIMED_ROWS = 40


@dataclass
class Cost:
    """What one fitted pipeline of a candidate costs to serve."""

    latency_ms: float  # median milliseconds for one row, through the compiled path
    size_mb: float  # pickled
    bags: int  # the candidate's fitted pipelines (one per fold)


def model_latency_ms(model: MlreModel, rows: pd.DataFrame, n: int = TIMED_ROWS) -> float:
    """Median milliseconds ``model`` takes to answer for one row, over up to ``n`` rows of
    ``rows`` one at a time (the first call, which compiles the model, is not timed)."""
    predict = model.predict if model.task == "regression" else model.predict_proba
    picked = rows.iloc[: max(1, min(n, len(rows)))]
    predict(picked.iloc[:1])
    times = []
    for i in range(len(picked)):
        row = picked.iloc[i : i + 1]
        started = time.perf_counter()
        predict(row)
        times.append(1000 * (time.perf_counter() - started))
    return float(np.median(times))


def model_size_mb(model: MlreModel) -> float:
    """The model's pickled size in MB (the way it is stored: in parts, shell and pipelines)."""
    shell, parts = model.in_parts()
    size = len(pickle.dumps(shell, protocol=pickle.HIGHEST_PROTOCOL))
    size += sum(len(pickle.dumps(p, protocol=pickle.HIGHEST_PROTOCOL)) for p in parts)
    return size / 1e6


@dataclass
class Limits:
    """The spec's limits, and how a candidate is measured against them."""

    max_latency_ms: float | None
    max_model_mb: float | None
    task: Task
    classes: np.ndarray | None
    contract: Any
    metric: str
    rows: pd.DataFrame  # rows to time one at a time
    bags: int | None  # pipelines per member once served (1 after a refit; None: as fitted)
    costs: dict[int, Cost] = field(default_factory=dict)

    @classmethod
    def of(cls, constraints: Constraints, **kwargs: Any) -> Limits | None:
        """The limits of ``constraints``, or None when they set none."""
        if constraints.max_latency_ms is None and constraints.max_model_mb is None:
            return None
        return cls(constraints.max_latency_ms, constraints.max_model_mb, **kwargs)

    def measure(self, t: TrialResult) -> Cost:
        """One pipeline of candidate ``t`` served alone (measured once per candidate)."""
        if t.id not in self.costs:
            pipelines = loaded(t.pipelines)
            alone = MlreModel(
                self.task, [Member(t.family, t.params, 1.0, pipelines[:1])], self.classes,
                self.contract, self.metric,
            )  # fmt: skip
            latency, size = model_latency_ms(alone, self.rows), model_size_mb(alone)
            self.costs[t.id] = Cost(latency, size, len(pipelines))
            t.latency_ms, t.size_mb = self.served(t)
        return self.costs[t.id]

    def served(self, t: TrialResult) -> tuple[float, float]:
        """Candidate ``t``'s expected latency and size once served, with its bags."""
        cost = self.costs[t.id]
        bags = self.bags or cost.bags
        return cost.latency_ms * bags, cost.size_mb * bags

    def fits(self, latency_ms: float, size_mb: float) -> bool:
        """Whether a model of this latency and size is within the limits."""
        return (self.max_latency_ms is None or latency_ms <= self.max_latency_ms) and (
            self.max_model_mb is None or size_mb <= self.max_model_mb
        )

    def select_within(
        self,
        kept: list[TrialResult],
        select: Callable[[list[TrialResult]], tuple[np.ndarray, float]],
    ) -> tuple[np.ndarray, float]:
        """``select``'s weights over ``kept`` where only candidates that fit alone take part,
        and the weakest chosen member leaves until the whole ensemble fits (members' latencies
        and sizes add up: a conservative sum, each paying for its own call)."""
        for t in kept:
            self.measure(t)
        pool = [t for t in kept if self.fits(*self.served(t))]
        if not pool:
            raise GateError(self.nothing_fits(kept), hint=self.hint())
        while True:
            weights, loss = select(pool)
            chosen = [(t, w) for t, w in zip(pool, weights, strict=True) if w > 0]
            total = np.sum([self.served(t) for t, _ in chosen], axis=0)
            if len(chosen) == 1 or self.fits(*total):
                break
            pool.remove(min(chosen, key=lambda c: c[1])[0])
        full = np.zeros(len(kept))
        at = {t.id: i for i, t in enumerate(kept)}
        for t, w in zip(pool, weights, strict=True):
            full[at[t.id]] = w
        return full, loss

    def nothing_fits(self, measured: list[TrialResult]) -> str:
        """What a run where no candidate fits says: the fastest (or smallest) one found."""
        served = [(t, *self.served(t)) for t in measured if t.id in self.costs]
        parts = []
        if self.max_latency_ms is not None and served:
            t, ms, _ = min(served, key=lambda s: s[1])
            parts.append(
                f"the fastest, {t.family} (trial {t.id}), takes {ms:.2f} ms per row against "
                f"max_latency_ms {self.max_latency_ms:g}"
            )
        if self.max_model_mb is not None and served:
            t, _, mb = min(served, key=lambda s: s[2])
            parts.append(
                f"the smallest, {t.family} (trial {t.id}), is {mb:.2f} MB against "
                f"max_model_mb {self.max_model_mb:g}"
            )
        return "no candidate model fits the constraints: " + "; ".join(parts or ["none measured"])

    def hint(self) -> str:
        return (
            "raise the limit, or give the search more time (faster and smaller configurations "
            "may be found); `mlre run --json` lists each candidate's latency and size"
        )


def trim_to_fit(model: MlreModel, limits: Limits, rows: pd.DataFrame) -> tuple[float, float, str]:
    """Measure the served ``model`` on ``rows`` and, when it is over a limit, trim it in place:
    one bag per member first, then its lowest-weighted members. Its final latency and size, and
    what was done ("" when nothing). A single pipeline of one member over the limit fails."""
    done = ""
    latency, size = model_latency_ms(model, rows), model_size_mb(model)
    if limits.fits(latency, size):
        return latency, size, done
    if any(len(m.pipelines) > 1 for m in model.members):
        for m in model.members:
            m.pipelines = m.pipelines[:1]
        model.__dict__.pop("compiled_", None)
        done = "kept one bag per member"
        latency, size = model_latency_ms(model, rows), model_size_mb(model)
    while not limits.fits(latency, size) and model.level_one is None and len(model.members) > 1:
        weakest = min(range(len(model.members)), key=lambda i: model.members[i].weight)
        model.members.pop(weakest)
        total = sum(m.weight for m in model.members) or 1.0
        for m in model.members:
            m.weight /= total
        model.__dict__.pop("compiled_", None)
        done = (done + ", " if done else "") + "dropped its lowest-weighted member"
        latency, size = model_latency_ms(model, rows), model_size_mb(model)
    if not limits.fits(latency, size):
        raise GateError(
            f"the chosen model does not fit the constraints once served: {latency:.2f} ms per "
            f"row and {size:.2f} MB (max_latency_ms {limits.max_latency_ms}, max_model_mb "
            f"{limits.max_model_mb})",
            hint=limits.hint(),
        )
    return latency, size, done
