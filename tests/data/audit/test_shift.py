"""Train/test checks: schema, contamination, distribution shift and unseen categories."""

from __future__ import annotations

import pandas as pd

from helpers import audit, dataset, findings
from mlre.findings import Severity

ADULT = "income-per-year"


def halves() -> tuple[pd.DataFrame, pd.DataFrame]:
    df = dataset("adult", rows=8000).drop_duplicates().reset_index(drop=True)
    return df.iloc[: len(df) // 2].reset_index(drop=True), df.iloc[len(df) // 2 :].reset_index(
        drop=True
    )


def test_a_random_split_raises_no_shift_and_no_overlap():
    train, test = halves()
    report = audit(train, ADULT, test=test)
    assert not findings(report, "distribution_shift")
    assert not findings(report, "train_test_overlap")
    assert not findings(report, "schema_mismatch")
    assert not report.findings.has_errors


def test_test_rows_copied_from_training_are_contamination():
    train, test = halves()
    leaked = pd.concat([test.iloc[:1000], train.iloc[:500]], ignore_index=True)
    found = findings(audit(train, ADULT, test=leaked), "train_test_overlap")
    assert found and found[0].severity is Severity.ERROR
    assert found[0].evidence["count"] == 500
    assert found[0].evidence["test_rows"][0] == 1000


def test_coarse_features_shared_by_a_random_split_are_not_contamination():
    df = dataset("cps1988_wages").sample(frac=1.0, random_state=0).reset_index(drop=True)
    train, test = df.iloc[:20000], df.iloc[20000:].reset_index(drop=True)
    found = findings(audit(train, "wage", test=test), "train_test_overlap")
    assert found and found[0].severity is Severity.WARNING
    assert found[0].evidence["train_repeated_fraction"] > 0.5
    assert "coarse features" in found[0].message


def test_a_shifted_population_is_reported_per_column():
    train, test = halves()
    older = test[test["age"] > 50].reset_index(drop=True)
    report = audit(train, ADULT, test=older)
    shifted = {f.column: f for f in findings(report, "distribution_shift")}
    assert "age" in shifted and shifted["age"].evidence["test"] == "Kolmogorov-Smirnov"
    assert shifted["age"].evidence["p_adjusted"] < 0.01 and shifted["age"].evidence["effect"] > 0.3
    assert "sex" not in shifted  # not every column moves with age


def test_categorical_and_label_shift():
    train, test = halves()
    women = test[test["sex"] == "Female"].reset_index(drop=True)
    shifted = {f.column: f for f in findings(audit(train, ADULT, test=women), "distribution_shift")}
    assert shifted["sex"].evidence["test"] == "chi-squared"
    assert ADULT in shifted  # women in this census earn >50K far less often


def test_missing_test_columns_are_an_error_and_extra_ones_info():
    train, test = halves()
    test = test.drop(columns=["education"]).assign(batch="b7")
    report = audit(train, ADULT, test=test)
    by_severity = {f.severity: f for f in findings(report, "schema_mismatch")}
    assert by_severity[Severity.ERROR].evidence["missing"] == ["education"]
    assert by_severity[Severity.INFO].evidence["extra"] == ["batch"]


def test_type_change_between_tables():
    train, test = halves()
    test["age"] = test["age"].astype(str)
    test.loc[test.index[0], "age"] = "forty"
    found = findings(audit(train, ADULT, test=test), "schema_mismatch", "age")
    assert found and found[0].severity is Severity.WARNING


def test_unseen_categories_in_test():
    train, test = halves()
    test.loc[test.index[:200], "workclass"] = "Astronaut"
    found = findings(audit(train, ADULT, test=test), "unseen_categories", "workclass")
    assert (
        found
        and found[0].evidence["values"][0] == "Astronaut"
        and found[0].severity is Severity.WARNING
    )


def test_unlabelled_test_table_is_fine():
    train, test = halves()
    report = audit(train, ADULT, test=test.drop(columns=[ADULT]))
    assert not findings(report, "schema_mismatch")
