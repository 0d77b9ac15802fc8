"""The automatic rollback rule on known observations: it fires on clear evidence only."""

from __future__ import annotations

import numpy as np
import pytest

from mlre.serve.guard import TrialGuard, tail_latency, wilson_low
from mlre.spec import RollbackPolicy

POLICY = RollbackPolicy(min_requests=20, max_error_rate=0.05, latency_floor_ms=20)


def test_the_wilson_lower_bound_is_a_cautious_rate():
    assert wilson_low(0, 50) == 0.0
    assert 0.0 < wilson_low(5, 50) < 0.1 < wilson_low(40, 50) < 0.8
    assert wilson_low(10, 10) > 0.5 and wilson_low(0, 0) == 0.0


def test_no_verdict_before_the_minimum_of_requests():
    guard = TrialGuard(POLICY, "binary", "2")
    for _ in range(19):
        guard.challenger(False, 5.0)
    assert guard.verdict() is None
    guard.challenger(False, 5.0)
    verdict = guard.verdict()
    assert verdict is not None and "error rate 100.0%" in verdict.reason


def test_a_few_errors_within_the_limit_are_not_a_rollback():
    guard = TrialGuard(POLICY, "binary", "2")
    for i in range(100):
        guard.challenger(i % 40 != 0, 5.0)  # 3 errors in 100: 3%, under the 5% limit
        guard.champion(5.0)
    assert guard.verdict() is None


def test_latency_is_judged_against_the_champion_above_the_floor():
    slow = TrialGuard(POLICY, "binary", "2")
    fast_but_relatively_slow = TrialGuard(POLICY, "binary", "2")
    for _ in range(30):
        slow.challenger(True, 200.0)
        slow.champion(20.0)
        fast_but_relatively_slow.challenger(True, 6.0)  # 3x the champion, but under 20 ms
        fast_but_relatively_slow.champion(2.0)
    verdict = slow.verdict()
    assert verdict is not None and "p99 latency 200.0 ms" in verdict.reason
    assert fast_but_relatively_slow.verdict() is None


def test_one_slow_champion_call_does_not_hide_a_challenger_slow_on_every_call():
    # among 30 calls an interpolated p99 is nearly the slowest: one champion pause (a
    # collection) of 340 ms would put it near 300 ms, above half the challenger's 450 ms
    guard = TrialGuard(POLICY, "binary", "2")
    for i in range(30):
        guard.champion(340.0 if i == 5 else 45.0 + i)
        guard.challenger(True, 450.0 + i)
    verdict = guard.verdict()
    assert verdict is not None and "against the champion's" in verdict.reason
    assert verdict.evidence["champion_p99_ms"] < 100
    assert tail_latency([1.0] * 29 + [500.0]) == 1.0
    # from 100 calls on, the p99 is the p99
    assert tail_latency(list(range(1, 201))) == np.percentile(range(1, 201), 99)


def test_a_shadow_call_that_answers_many_requests_counts_its_time_once():
    """A shadow predicts what gathered in one call: one slow call among few is not a p99 of
    the challenger, and the rule waits for as many timed calls as it needs requests."""
    guard = TrialGuard(POLICY, "binary", "2")
    for call in range(10):  # 10 calls of 12 requests; the first call slow
        for i in range(12):
            guard.challenger(True, (300.0 if call == 0 else 10.0) if i == 0 else None)
            guard.champion(10.0)
    assert guard.verdict() is None
    for _ in range(POLICY.min_requests):  # then calls of one request each, all slow
        guard.challenger(True, 300.0)
    verdict = guard.verdict()
    assert verdict is not None and "p99 latency 300.0 ms" in verdict.reason


def test_a_busy_window_is_judged_once_per_hundredth_of_it():
    guard = TrialGuard(POLICY, "binary", "2")
    judged = []
    for i in range(1000):
        guard.challenger(True, 5.0)
        if guard.due():
            judged.append(i + 1)
    assert judged[:3] == [1, 2, 3]  # a small window: every observation
    gaps = np.diff(judged)
    assert gaps.max() <= 10 and len(judged) > 200  # a window of up to 1,000: every 10 at most


@pytest.mark.parametrize(("differing", "fires"), [(5, False), (35, True)])
def test_shadow_disagreement(differing, fires):
    guard = TrialGuard(POLICY, "binary", "2")
    for i in range(50):
        guard.challenger(True, 5.0)
        guard.compare("yes", "no" if i < differing else "yes")
    verdict = guard.verdict()
    assert (verdict is not None and "differ" in verdict.reason) == fires


def test_a_canary_whose_answers_shift_is_rolled_back_and_chance_is_not():
    shifted, same = TrialGuard(POLICY, "binary", "2"), TrialGuard(POLICY, "binary", "2")
    for i in range(60):
        for guard in (shifted, same):
            guard.challenger(True, 5.0)
            guard.answers("champion", ["yes" if i % 10 < 3 else "no"])
        shifted.answers("challenger", ["yes" if i % 10 < 8 else "no"])
        same.answers("challenger", ["yes" if i % 10 < 4 else "no"])
    verdict = shifted.verdict()
    assert verdict is not None and "total variation distance" in verdict.reason
    assert same.verdict() is None


def test_a_regression_canary_shift_uses_the_distance_between_value_distributions():
    guard = TrialGuard(POLICY, "regression", "2")
    for i in range(60):
        guard.challenger(True, 5.0)
        guard.answers("champion", [float(i)])
        guard.answers("challenger", [float(i) + 100.0])
    verdict = guard.verdict()
    assert verdict is not None and "Kolmogorov-Smirnov" in verdict.reason
