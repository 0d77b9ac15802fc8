"""The automatic rollback rule: watch a challenger over a sliding window and say when it must go.

Reasons, each judged only once the window holds the policy's minimum of challenger requests:
its error rate, its p99 latency (over as many timed calls, ``tail_latency``: against an absolute
bound, and against the champion's p99 times a ratio, above a floor where timer noise rules), in
shadow how often its answers differ from the champion's on the same requests (classification:
another label; regression: further apart than a tolerance times the spread of the champion's
answers in the window), and, as a canary, how far the distribution of its answers is from the
champion's on the rest of the traffic (the two shares are drawn from the same requests by a
hash, so a shift is the model's doing).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlre.spec import RollbackPolicy, Task

#: Significance a distribution shift must also reach before it counts.
SHIFT_ALPHA = 0.001


@dataclass
class Verdict:
    """Why the challenger must go, with the numbers that say so."""

    reason: str
    evidence: dict[str, Any]


class TrialGuard:
    """Observations of one challenger version (and of the champion beside it), thread-safe."""

    def __init__(self, policy: RollbackPolicy, task: Task, version: str) -> None:
        self.policy = policy
        self.task = task
        self.version = version
        self._lock = threading.Lock()
        self._challenger: deque[tuple[float, bool, float | None]] = deque()  # time, ok, ms
        self._unjudged = 0  # challenger observations since the last ``due``
        self._champion: deque[tuple[float, float]] = deque()  # time, latency ms
        self._pairs: deque[tuple[float, Any, Any]] = deque()  # time, champion, challenger answer
        # answers to different requests (a canary's share and the rest), for distribution shift
        self._answers: dict[str, deque[tuple[float, Any]]] = {
            "champion": deque(),
            "challenger": deque(),
        }

    def challenger(self, ok: bool, latency_ms: float | None) -> None:
        """One challenger prediction (shadow or canary); ``latency_ms`` is None for a request
        answered in a call whose time another request of it carries."""
        with self._lock:
            self._challenger.append((time.monotonic(), ok, latency_ms))
            self._unjudged += 1

    def due(self) -> bool:
        """Whether a verdict is worth computing now: after every observation while the window
        is small, then once per hundredth of the window (a verdict reads the whole window, so
        judging every request of a busy one would cost each request in proportion to it)."""
        with self._lock:
            if self._unjudged < max(1, len(self._challenger) // 100):
                return False
            self._unjudged = 0
            return True

    def champion(self, latency_ms: float) -> None:
        """One champion prediction, for the latency comparison."""
        with self._lock:
            self._champion.append((time.monotonic(), latency_ms))

    def compare(self, champion: Any, challenger: Any) -> bool:
        """A shadowed request's two answers (label or value); whether they differ, as far as
        the request alone tells (regression differences are judged against the window)."""
        with self._lock:
            self._pairs.append((time.monotonic(), champion, challenger))
        if self.task == "regression":
            return False
        return champion != challenger

    def answers(self, role: str, values: list[Any]) -> None:
        """Answers given to live traffic by ``role`` (champion or challenger), for comparing
        the two distributions when they answer different requests (a canary)."""
        now = time.monotonic()
        with self._lock:
            self._answers[role].extend((now, v) for v in values)

    def _trim(self, now: float) -> None:
        start = now - self.policy.window_seconds
        queues: list[deque[Any]] = [self._challenger, self._champion, self._pairs]
        queues += self._answers.values()
        for q in queues:
            while q and q[0][0] < start:
                q.popleft()

    def verdict(self) -> Verdict | None:
        """The reason to roll back now, if there is one."""
        p = self.policy
        with self._lock:
            self._trim(time.monotonic())
            seen = list(self._challenger)
            champ = [lat for _, lat in self._champion]
            pairs = list(self._pairs)
            mine = [v for _, v in self._answers["challenger"]]
            theirs = [v for _, v in self._answers["champion"]]
        if len(seen) < p.min_requests:
            return None
        n = len(seen)
        errors = sum(1 for _, ok, _ in seen if not ok)
        base = {"requests": n, "window_seconds": p.window_seconds}
        # a rate counts as over its limit when even its 99% lower confidence bound is: the rule
        # is checked after every request, and a small window's rate wanders by chance
        if wilson_low(errors, n) > p.max_error_rate:
            return Verdict(
                f"error rate {errors / n:.1%} over {n} requests (limit {p.max_error_rate:.1%})",
                {**base, "errors": errors, "error_rate": errors / n},
            )
        # one time per call: a shadow answers the requests that gathered in one call, and a p99
        # of a handful of calls would be their slowest
        latencies = [lat for _, ok, lat in seen if ok and lat is not None]
        if len(latencies) >= p.min_requests:
            p99 = tail_latency(latencies)
            if p.max_p99_ms is not None and p99 > p.max_p99_ms:
                return Verdict(
                    f"p99 latency {p99:.1f} ms (limit {p.max_p99_ms:.1f} ms)",
                    {**base, "p99_ms": p99},
                )
            if len(champ) >= p.min_requests and p99 > p.latency_floor_ms:
                champ_p99 = tail_latency(champ)
                if p99 > p.max_latency_ratio * champ_p99:
                    return Verdict(
                        f"p99 latency {p99:.1f} ms against the champion's {champ_p99:.1f} ms "
                        f"(limit {p.max_latency_ratio:g}x)",
                        {**base, "p99_ms": p99, "champion_p99_ms": champ_p99},
                    )
        if len(pairs) >= p.min_requests:
            differing = self._disagreement(pairs)
            share = differing / len(pairs)
            if wilson_low(differing, len(pairs)) > p.max_disagreement:
                return Verdict(
                    f"answers differ from the champion's on {share:.1%} of {len(pairs)} shadowed "
                    f"requests (limit {p.max_disagreement:.1%})",
                    {**base, "disagreement": share, "compared": len(pairs)},
                )
        if len(mine) >= p.min_requests and len(theirs) >= p.min_requests:
            shift, measure = self._shift(mine, theirs)
            if shift > p.max_prediction_shift:
                return Verdict(
                    f"its answers are distributed unlike the champion's: {measure} {shift:.2f} "
                    f"over {len(mine)} and {len(theirs)} answers (limit {p.max_prediction_shift:g})",
                    {**base, "prediction_shift": shift, "measure": measure},
                )
        return None

    def _shift(self, mine: list[Any], theirs: list[Any]) -> tuple[float, str]:
        """How far apart two samples of answers are: the two-sample Kolmogorov-Smirnov
        statistic for values, the total variation distance between label frequencies; 0 unless
        the difference is also significant (p < 0.001), since the rule is checked after every
        request and small windows differ by chance."""
        from scipy.stats import chi2_contingency, ks_2samp

        if self.task == "regression":
            stat = ks_2samp(np.asarray(mine, dtype=float), np.asarray(theirs, dtype=float))
            distance, p_value = float(stat.statistic), float(stat.pvalue)
            measure = "Kolmogorov-Smirnov distance"
        else:
            a, b = Counter(map(str, mine)), Counter(map(str, theirs))
            labels = sorted(set(a) | set(b))
            distance = 0.5 * sum(abs(a[k] / len(mine) - b[k] / len(theirs)) for k in labels)
            table = np.array([[a[k] for k in labels], [b[k] for k in labels]])
            p_value = float(chi2_contingency(table).pvalue) if len(labels) > 1 else 1.0
            measure = "total variation distance between predicted labels"
        return (distance if p_value < SHIFT_ALPHA else 0.0), measure

    def _disagreement(self, pairs: list[tuple[float, Any, Any]]) -> int:
        """How many shadowed requests were answered differently."""
        if self.task != "regression":
            return sum(1 for _, a, b in pairs if a != b)
        a = np.array([float(x) for _, x, _ in pairs])
        b = np.array([float(y) for _, _, y in pairs])
        spread = float(np.std(a)) or 1e-12
        return int(np.sum(np.abs(a - b) > self.policy.regression_tolerance * spread))


def tail_latency(latencies: list[float]) -> float:
    """The p99 of a window's latencies; with fewer than 100, the second slowest. Among 30 calls
    the interpolated p99 is nearly the slowest one, so a single pause (a collection, a cold
    cache) would stand for the whole tail: one such champion call hid a challenger ten times
    slower behind the ratio. Below 100 calls the slowest is the only one beyond the 99th
    percentile's support, and is set aside."""
    if len(latencies) >= 100:
        return float(np.percentile(latencies, 99))
    ordered = sorted(latencies)
    return float(ordered[-2] if len(ordered) > 1 else ordered[-1])


def wilson_low(successes: int, n: int, z: float = 2.576) -> float:
    """The lower end of the Wilson score interval of a proportion (99% by default)."""
    if n == 0:
        return 0.0
    phat = successes / n
    centre = phat + z * z / (2 * n)
    margin = z * np.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
    return float((centre - margin) / (1 + z * z / n))
