"""Target checks: missing labels, balance, size, leakage and label noise, planted in real data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import audit, dataset, findings
from mlre.findings import Severity

ADULT = "income-per-year"


def test_missing_target_rows_are_counted():
    df = dataset("adult", rows=3000)
    df.loc[df.index[:50], ADULT] = np.nan
    found = findings(audit(df, ADULT), "missing_target")
    assert found and found[0].evidence["count"] == 50 and found[0].severity is Severity.WARNING


def test_class_imbalance():
    df = dataset("adult")
    rich = df[df[ADULT] == ">50K"].head(150)
    poor = df[df[ADULT] == "<=50K"].head(4000)
    found = findings(audit(pd.concat([rich, poor], ignore_index=True), ADULT), "class_imbalance")
    assert found and found[0].evidence["class_counts"] == {"<=50K": 4000, ">50K": 150}
    assert not findings(audit(dataset("adult", rows=3000), ADULT), "class_imbalance")


def test_a_class_with_one_row_is_an_error_and_rare_classes_a_warning():
    df = dataset("hpc_jobs")
    df.loc[df.index[0], "class"] = "XL"
    df.loc[df.index[1:5], "class"] = "XXL"
    report = audit(df, "class")
    rare = findings(report, "rare_classes")
    by_severity = {f.severity: f for f in rare}
    assert by_severity[Severity.ERROR].evidence["classes"] == ["XL"]
    assert by_severity[Severity.WARNING].evidence["classes"] == ["XXL"]
    assert report.exit_code == 1


def test_too_few_rows():
    df = dataset("german_credit")
    tiny = findings(audit(df.head(15), "credit"), "too_few_rows")
    assert tiny and tiny[0].severity is Severity.ERROR
    few = findings(audit(df.head(120), "credit"), "too_few_rows")
    assert few and few[0].severity is Severity.WARNING
    assert not findings(audit(df, "credit"), "too_few_rows")


def test_a_leaked_copy_of_the_target_is_an_error():
    df = dataset("adult", rows=5000)
    df["approved_flag"] = (df[ADULT] == ">50K").astype(int)
    df["bracket"] = df[ADULT].map({">50K": "high", "<=50K": "low"})
    report = audit(df, ADULT)
    leaked = {
        f.column: f for f in findings(report, "target_leakage") if f.severity is Severity.ERROR
    }
    assert set(leaked) == {"approved_flag", "bracket"}
    assert report.exit_code == 1


def test_a_leaked_noisy_proxy_is_caught():
    df = dataset("adult", rows=5000)
    rng = np.random.default_rng(0)
    positive = (df[ADULT] == ">50K").to_numpy()
    df["review_score"] = np.where(positive, 80, 20) + rng.normal(0, 3, len(df))
    found = findings(audit(df, ADULT), "target_leakage", "review_score")
    assert found and found[0].severity is Severity.ERROR and found[0].evidence["score"] > 0.99


def test_a_transform_of_a_regression_target_is_an_error():
    df = dataset("diamonds", rows=5000)
    df["price_eur"] = df["price"] * 0.92
    df["log_price"] = np.log(df["price"])
    leaked = {
        f.column
        for f in findings(audit(df, "price"), "target_leakage")
        if f.severity is Severity.ERROR
    }
    assert leaked == {"price_eur", "log_price"}


def test_strong_but_honest_features_are_not_called_leakage():
    # carat explains most of a diamond's price, yet it is known before the sale
    for name, target in [("diamonds", "price"), ("adult", ADULT), ("telco_churn", "churn")]:
        report = audit(dataset(name, rows=5000), target)
        assert not [
            f for f in findings(report, "target_leakage") if f.severity is Severity.ERROR
        ], name


def test_flipped_labels_are_among_the_top_suspects():
    df = dataset("adult", rows=8000, seed=3)
    rng = np.random.default_rng(7)
    flipped = rng.choice(len(df), 80, replace=False)
    df.loc[flipped, ADULT] = df.loc[flipped, ADULT].map({">50K": "<=50K", "<=50K": ">50K"})
    found = findings(audit(df, ADULT), "label_issues")
    assert found
    suspects = [s["row"] for s in found[0].evidence["suspects"]]
    precision = len(set(suspects) & set(flipped.tolist())) / len(suspects)
    assert precision >= 0.3, precision  # 1% of rows were flipped: 30x enrichment at least
    top = found[0].evidence["suspects"][0]
    assert top["p_label"] < 0.05 and top["likely"] != top["label"]
