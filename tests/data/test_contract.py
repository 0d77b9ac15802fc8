"""The data contract: built from a real table, saved, read back, and checked against new data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import audit, dataset
from mlre.data.contract import DataContract
from mlre.errors import InputError

ADULT = "income-per-year"


@pytest.fixture(scope="module")
def contract() -> DataContract:
    df = dataset("adult", rows=3000)
    return audit(df, ADULT, na_values=["?"]).contract


def test_contract_describes_the_columns(contract: DataContract):
    assert contract.target == ADULT and contract.task == "binary" and contract.n_rows == 3000
    age = contract.column("age")
    assert age.dtype == "integer" and age.role == "numeric" and age.min >= 17 and age.max <= 90
    sex = contract.column("sex")
    assert sex.categories == ["Female", "Male"] and not sex.nullable
    assert len(contract.features) == 14


def test_contract_round_trips_through_json(contract: DataContract, tmp_path: Path):
    path = contract.save(tmp_path / "contract.json")
    assert json.loads(path.read_text())["contract_version"] == 1
    assert DataContract.load(path) == contract


def test_new_data_that_fits_passes(contract: DataContract):
    rows = dataset("adult", rows=50, seed=9).drop(columns=[ADULT])
    rows = rows[rows["sex"].isin(["Female", "Male"])]
    blocking = [v for v in contract.validate_frame(rows) if v.blocking]
    assert blocking == []


def test_violations_name_the_column_and_the_reason(contract: DataContract):
    rows = dataset("adult", rows=20, seed=9).drop(columns=[ADULT, "education"])
    rows["age"] = rows["age"].astype(object)
    rows.loc[rows.index[3], "age"] = "forty"
    rows.loc[rows.index[4], "sex"] = "Unknown-gender-code"
    rows["extra"] = 1
    found = {v.kind: v for v in contract.validate_frame(rows)}
    assert found["missing_column"].column == "education" and found["missing_column"].blocking
    assert found["wrong_type"].column == "age" and "'forty'" in found["wrong_type"].message
    assert found["wrong_type"].rows == [3]
    assert found["unseen_category"].column == "sex" and not found["unseen_category"].blocking
    assert found["extra_column"].column == "extra"


def test_a_contract_from_a_newer_mlre_is_refused(contract: DataContract, tmp_path: Path):
    raw = json.loads(contract.model_dump_json())
    raw["contract_version"] = 99
    path = tmp_path / "contract.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(InputError, match="newer"):
        DataContract.load(path)
