"""The search-versus-holdout gap finding fires only when the holdout falls outside the range the
bootstrap noise of both sets of rows allows, not whenever the two numbers differ."""

from __future__ import annotations

import numpy as np

from mlre.evaluate.diagnostics import expected_range
from mlre.evaluate.metrics import get_metric
from mlre.search.notes import gap_findings


def _rows(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    return y, y + rng.normal(scale=noise, size=n)


def test_a_gap_inside_the_noise_of_a_small_holdout_is_no_finding():
    rmse = get_metric("rmse")
    searched, held = _rows(400, 1.0, 0), _rows(60, 1.0, 3)
    estimate, holdout = rmse(*searched), rmse(*held)
    interval = expected_range(rmse, estimate, searched, held)
    # the holdout is 9% worse, but sixty rows cannot tell that from noise
    assert holdout > 1.05 * estimate
    assert interval[0] < holdout < interval[1]
    assert gap_findings(estimate, holdout, interval, "rmse") == []


def test_a_holdout_worse_than_the_noise_allows_is_a_finding():
    rmse = get_metric("rmse")
    searched, held = _rows(2000, 1.0, 0), _rows(2000, 1.6, 1)  # the holdout is truly worse
    estimate, holdout = rmse(*searched), rmse(*held)
    interval = expected_range(rmse, estimate, searched, held)
    assert holdout > interval[1]
    [finding] = gap_findings(estimate, holdout, interval, "rmse")
    assert finding.check == "search_holdout_gap" and finding.severity == "warning"
    assert "worse than the search estimate" in finding.message
    assert f"{interval[0]:.4f} to {interval[1]:.4f}" in finding.message
    # a holdout better than expected is no reason to warn
    assert gap_findings(estimate, interval[0] - 0.1, interval, "rmse") == []


def test_for_a_score_where_larger_is_better_the_gap_points_the_other_way():
    interval = (0.80, 0.90)
    assert gap_findings(0.85, 0.82, interval, "roc_auc") == []
    [finding] = gap_findings(0.85, 0.70, interval, "roc_auc")
    assert "holdout roc_auc (0.7000)" in finding.message
