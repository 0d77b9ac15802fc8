"""Drift between a reference and a current table on real data: no alarm for a random split,
the shifted column found for a planted shift, the right test for the sample's size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from helpers import dataset, meta
from mlre.monitor.drift import Thresholds, column_drift, data_drift, drift_findings

ADULT = meta("adult")


@pytest.fixture(scope="module")
def adult() -> pd.DataFrame:
    return dataset("adult").replace({"?": np.nan})


def features(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c != ADULT["target"]]


def test_a_random_split_does_not_drift(adult):
    shuffled = adult.sample(frac=1, random_state=0)
    ref, cur = shuffled.iloc[:8000], shuffled.iloc[8000:16000]
    d = data_drift(ref, cur, features(adult))
    assert not d.dataset_drift and d.share < 0.2
    assert all(c.test in ("wasserstein", "jensen_shannon") for c in d.columns)
    assert not any(f.check == "drift_dataset" for f in drift_findings(d))


def test_a_planted_covariate_shift_is_found_with_its_evidence(adult):
    older = adult[adult["age"] >= 45]
    d = data_drift(adult.iloc[:8000], older.iloc[:4000], features(adult))
    drifted = {c.column: c for c in d.drifted}
    assert "age" in drifted and drifted["age"].psi_band == "major"
    assert drifted["age"].distance > 1.0  # more than a standard deviation apart
    warning = next(f for f in drift_findings(d) if f.column == "age")
    assert "Wasserstein" in warning.message and warning.evidence["psi"] > 0.25
    assert drifted["age"].figure["data"][0]["type"] == "histogram"


def test_small_samples_are_judged_by_a_test_and_agree_with_scipy(adult):
    ref, cur = adult.iloc[:500], adult[adult["sex"] == "Female"].iloc[:300]
    age = column_drift(ref["age"], cur["age"], "age", Thresholds())
    ks = stats.ks_2samp(ref["age"], cur["age"])
    assert age.test == "ks" and age.p_value == pytest.approx(ks.pvalue)
    sex = column_drift(ref["sex"], cur["sex"], "sex", Thresholds())
    assert sex.test == "chi2" and sex.drifted and sex.p_value < 1e-10
    counts = [
        ref["sex"].value_counts().reindex(["Male", "Female"]).to_numpy(),
        [0, len(cur)],
    ]
    chi = stats.chi2_contingency(counts, correction=False)
    assert sex.statistic == pytest.approx(chi.statistic) and sex.p_value == pytest.approx(
        chi.pvalue
    )


def test_psi_is_the_textbook_sum_over_deciles():
    rng = np.random.default_rng(0)
    ref, cur = rng.normal(size=20000), rng.normal(0.5, 1, size=20000)
    c = column_drift(pd.Series(ref), pd.Series(cur), "x", Thresholds())
    edges = np.quantile(ref, np.linspace(0, 1, 11))
    edges[0], edges[-1] = -np.inf, np.inf
    r = np.histogram(ref, edges)[0] / len(ref)
    k = np.histogram(cur, edges)[0] / len(cur)
    assert c.psi == pytest.approx(np.sum((k - r) * np.log(k / r)), rel=1e-6)
    assert c.psi_band == "moderate" or c.psi_band == "major"


def test_a_new_category_and_missing_values_count_as_drift():
    ref = pd.Series(["a", "b"] * 1000)
    cur = pd.Series(["a", "b", "c", None] * 500)
    c = column_drift(ref, cur, "x", Thresholds())
    assert c.drifted and c.test == "jensen_shannon" and c.distance > 0.1


def test_a_prior_shift_of_the_labels_is_reported_with_two_files(adult, tmp_path):
    from mlre.api.monitor import watch

    target = ADULT["target"]
    high = adult[adult[target].str.strip() == ">50K"]
    low = adult[adult[target].str.strip() != ">50K"]
    shifted = pd.concat([high.sample(1500, random_state=0), low.sample(1500, random_state=0)])
    result = watch(adult.sample(5000, random_state=1), shifted, target=target, track=False)
    assert result.drift.target is not None and result.drift.target.drifted
    assert any(f.check == "drift_target" for f in result.findings)
    assert target not in [c.column for c in result.drift.columns]
