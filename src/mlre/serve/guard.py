"""The automatic rollback rule: watch a challenger over a sliding window and say when it must go.

Reasons, each judged only once the window holds the policy's minimum of challenger requests:
its error rate, its p99 latency (against an absolute bound, and against the champion's p99 times
a ratio, above a floor where timer noise rules), and, in shadow, how often its answers differ
from the champion's (classification: another label; regression: further apart than a tolerance
times the spread of the champion's answers in the window).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlre.spec import RollbackPolicy


@dataclass
class Verdict:
    """Why the challenger must go, with the numbers that say so."""

    reason: str
    evidence: dict[str, Any]


class TrialGuard:
    """Observations of one challenger version (and of the champion beside it), thread-safe."""

    def __init__(self, policy: RollbackPolicy, task: str, version: str) -> None:
        self.policy = policy
        self.task = task
        self.version = version
        self._lock = threading.Lock()
        self._challenger: deque[tuple[float, bool, float]] = deque()  # time, ok, latency ms
        self._champion: deque[tuple[float, float]] = deque()  # time, latency ms
        self._pairs: deque[tuple[float, Any, Any]] = deque()  # time, champion, challenger answer

    def challenger(self, ok: bool, latency_ms: float) -> None:
        """One challenger prediction (shadow or canary)."""
        with self._lock:
            self._challenger.append((time.monotonic(), ok, latency_ms))

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

    def _trim(self, now: float) -> None:
        start = now - self.policy.window_seconds
        for q in (self._challenger, self._champion, self._pairs):
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
        if len(seen) < p.min_requests:
            return None
        n = len(seen)
        errors = sum(1 for _, ok, _ in seen if not ok)
        base = {"requests": n, "window_seconds": p.window_seconds}
        if errors / n > p.max_error_rate:
            return Verdict(
                f"error rate {errors / n:.1%} over {n} requests (limit {p.max_error_rate:.1%})",
                {**base, "errors": errors, "error_rate": errors / n},
            )
        latencies = [lat for _, ok, lat in seen if ok]
        if latencies:
            p99 = float(np.percentile(latencies, 99))
            if p.max_p99_ms is not None and p99 > p.max_p99_ms:
                return Verdict(
                    f"p99 latency {p99:.1f} ms (limit {p.max_p99_ms:.1f} ms)",
                    {**base, "p99_ms": p99},
                )
            if len(champ) >= p.min_requests and p99 > p.latency_floor_ms:
                champ_p99 = float(np.percentile(champ, 99))
                if p99 > p.max_latency_ratio * champ_p99:
                    return Verdict(
                        f"p99 latency {p99:.1f} ms against the champion's {champ_p99:.1f} ms "
                        f"(limit {p.max_latency_ratio:g}x)",
                        {**base, "p99_ms": p99, "champion_p99_ms": champ_p99},
                    )
        if len(pairs) >= p.min_requests:
            share = self._disagreement(pairs)
            if share > p.max_disagreement:
                return Verdict(
                    f"answers differ from the champion's on {share:.1%} of {len(pairs)} shadowed "
                    f"requests (limit {p.max_disagreement:.1%})",
                    {**base, "disagreement": share, "compared": len(pairs)},
                )
        return None

    def _disagreement(self, pairs: list[tuple[float, Any, Any]]) -> float:
        if self.task != "regression":
            return sum(1 for _, a, b in pairs if a != b) / len(pairs)
        a = np.array([float(x) for _, x, _ in pairs])
        b = np.array([float(y) for _, _, y in pairs])
        spread = float(np.std(a)) or 1e-12
        return float(np.mean(np.abs(a - b) > self.policy.regression_tolerance * spread))
