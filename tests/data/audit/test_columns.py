"""Each column check finds the problem planted in a real data set, and stays quiet otherwise."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd

from helpers import audit, dataset, findings
from mlre.findings import Severity

ADULT = "income-per-year"


def adult(rows: int = 3000) -> pd.DataFrame:
    return dataset("adult", rows=rows)


def test_missing_values_reports_mostly_empty_and_entirely_empty_columns():
    df = adult()
    df.loc[df.sample(frac=0.6, random_state=1).index, "occupation"] = np.nan
    df["notes"] = np.nan
    report = audit(df, ADULT)
    occ = findings(report, "missing_values", "occupation")
    assert occ and occ[0].severity is Severity.WARNING and "60.0% missing" in occ[0].message
    empty = findings(report, "missing_values", "notes")
    assert empty and "entirely empty" in empty[0].message


def test_light_missingness_is_summarised_as_info():
    df = adult()
    df.loc[df.index[:30], "age"] = np.nan
    summary = [f for f in findings(audit(df, ADULT), "missing_values") if f.column is None]
    assert summary[0].severity is Severity.INFO
    assert summary[0].evidence["fraction_by_column"]["age"] == 0.01


def test_disguised_missing_tokens_are_found_and_silenced_by_na_values():
    df = adult()
    found = findings(audit(df, ADULT), "disguised_missing", "workclass")
    assert found and found[0].severity is Severity.WARNING and "'?'" in found[0].message
    assert found[0].evidence["tokens"]["?"] == int((df["workclass"] == "?").sum())

    cleaned = df.replace("?", np.nan)
    assert not findings(audit(cleaned, ADULT), "disguised_missing")


def test_constant_and_near_constant_columns():
    df = adult()
    df["country_code"] = "US"
    df["flag"] = "a"
    df.loc[df.index[0], "flag"] = "b"
    report = audit(df, ADULT)
    assert findings(report, "constant", "country_code")[0].severity is Severity.WARNING
    near = findings(report, "near_constant", "flag")
    assert near and near[0].evidence["value"] == "a"
    assert not findings(report, "constant", "age")


def test_duplicate_rows_point_at_the_copies():
    df = dataset("german_credit")
    copies = df.iloc[:100]
    dup = pd.concat([df, copies], ignore_index=True)
    found = findings(audit(dup, "credit"), "duplicate_rows")
    assert found and found[0].severity is Severity.WARNING
    assert found[0].evidence["duplicates"] >= 100
    first, copy = found[0].evidence["examples_first_and_copy"][0]
    assert dup.iloc[first].equals(dup.iloc[copy]) and copy >= 1000
    assert not findings(audit(df, "credit"), "duplicate_rows")


def test_identical_features_with_different_labels_are_reported():
    df = dataset("german_credit")
    flipped = df.iloc[:20].copy()
    flipped["credit"] = 3 - flipped["credit"]
    found = findings(
        audit(pd.concat([df, flipped], ignore_index=True), "credit"), "conflicting_duplicates"
    )
    assert found and found[0].evidence["groups"] >= 20


def test_duplicate_columns_name_the_copy():
    df = dataset("german_credit")
    df["month_again"] = df["month"]
    found = findings(audit(df, "credit"), "duplicate_columns")
    assert found and found[0].column == "month" and found[0].evidence["copies"] == ["month_again"]


def test_identifier_columns_are_flagged_unless_declared():
    df = adult()
    df["customer_ref"] = [uuid.UUID(int=i + 12345).hex for i in range(len(df))]
    df["row_number"] = np.arange(len(df))
    report = audit(df, ADULT)
    assert findings(report, "identifier", "customer_ref")
    assert findings(report, "identifier", "row_number")
    declared = audit(df, ADULT, id_columns=["customer_ref", "row_number"])
    assert not findings(declared, "identifier")
    assert declared.profiles["customer_ref"].role == "identifier"


def test_high_cardinality_categoricals():
    df = adult()
    rng = np.random.default_rng(0)
    df["city"] = [f"city_{k}" for k in rng.integers(0, 400, len(df))]
    found = findings(audit(df, ADULT), "high_cardinality", "city")
    assert found and found[0].evidence["distinct"] > 300
    assert not findings(audit(adult(), ADULT), "high_cardinality")


def test_mixed_types_numbers_stored_with_text():
    df = dataset("ames_housing")
    area = df["Lot.Area"].astype(str)
    area.iloc[:60] = "about 9k"
    df["Lot.Area"] = area
    found = findings(audit(df, "price"), "mixed_types", "Lot.Area")
    assert found and "numbers" in found[0].message and "about 9k" in found[0].message
    assert found[0].severity is Severity.WARNING


def test_mixed_python_types_in_one_column():
    df = dataset("german_credit")
    df["code"] = pd.Series([1 if i % 3 else "x" for i in range(len(df))], dtype=object)
    found = findings(audit(df, "credit"), "mixed_types", "code")
    assert found and "int" in found[0].message and "str" in found[0].message


def test_infinite_values_are_an_error():
    df = dataset("diamonds", rows=3000)
    df.loc[[5, 7], "carat"] = np.inf
    report = audit(df, "price")
    found = findings(report, "infinite_values", "carat")
    assert found and found[0].severity is Severity.ERROR and found[0].evidence["rows"] == [5, 7]
    assert report.exit_code == 1


def test_extreme_outliers_are_warnings_with_their_rows():
    df = adult()
    df.loc[[10, 20, 30], "age"] = 99999
    found = findings(audit(df, ADULT), "outliers", "age")
    assert found and found[0].severity is Severity.WARNING
    assert {e["row"] for e in found[0].evidence["examples"]} >= {10, 20, 30}
    assert not [
        f for f in findings(audit(adult(), ADULT), "outliers") if f.severity is Severity.WARNING
    ]


def test_datetime_problems_unparsable_future_and_placeholder_dates():
    df = dataset("compas_recidivism", rows=3000)
    df.loc[df.index[:40], "c_jail_in"] = "2013-13-45 25:00:00"
    df.loc[df.index[40:45], "dob"] = "2099-01-01"
    df.loc[df.index[45:50], "dob"] = "1800-01-01"
    report = audit(df, "two_year_recid")
    assert report.profiles["c_jail_in"].role == "datetime"
    unparsable = findings(report, "datetime_unparsable", "c_jail_in")
    assert unparsable and "2013-13-45" in unparsable[0].message
    future = findings(report, "datetime_future", "dob")
    assert future and future[0].evidence["count"] == 5
    assert findings(report, "datetime_ancient", "dob")[0].evidence["count"] == 5
    clean = audit(dataset("compas_recidivism", rows=3000), "two_year_recid")
    assert not findings(clean, "datetime_future") and not findings(clean, "datetime_unparsable")
