"""The objective spec: validation, suggestions for typos, CLI overrides, the template."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest
import yaml
from pydantic import BaseModel

from mlre.errors import SpecError
from mlre.spec import FairnessConstraint, Spec, build_spec, load_spec, render_template


def test_template_is_valid_and_commented():
    text = render_template(target="income")
    assert text.count("#") > 15
    spec = build_spec(yaml.safe_load(text))
    assert spec.target == "income" and spec.time_budget == 300 and spec.project_name == "income"


def _leaves(model: type[BaseModel], prefix: str = "") -> list[tuple[str, object]]:
    """Every key of the spec, nested ones as dotted paths, with its field."""
    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        nested = [
            a for a in (*get_args(ann), ann) if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        out.append((prefix + name, field))
        if nested and nested[0] is not FairnessConstraint:
            out += _leaves(nested[0], prefix + name + ".")
    return out


def test_the_template_is_the_spec_with_its_defaults():
    # written from the model, so a new key, default or description can never be missing from it
    text = render_template(target="income", project="credit")
    assert yaml.safe_load(text) == Spec(target="income", project="credit").model_dump(mode="json")
    for path, field in _leaves(Spec):
        assert field.description, f"{path} has no description for `mlre init` to show"
        assert path.rsplit(".", 1)[-1] + ":" in text


SRC = Path(__file__).resolve().parents[1] / "src" / "mlre"


@pytest.mark.parametrize("path", [p for p, _ in _leaves(Spec)])
def test_every_spec_key_is_read_somewhere(path: str):
    # a setting that is accepted and then ignored is a defect: each key must be read outside spec.py
    name = path.rsplit(".", 1)[-1]
    pattern = re.compile(rf"\.{name}\b|[\"']{name}[\"']|\b{name}=")
    readers = [
        p.relative_to(SRC)
        for p in SRC.rglob("*.py")
        if p.name != "spec.py" and pattern.search(p.read_text())
    ]
    assert readers, f"spec key {path!r} is read nowhere in src/mlre"


def test_a_time_setting_the_data_cannot_honour_stops_the_cli_with_nothing_stored(
    tmp_path: Path, monkeypatch
):
    from typer.testing import CliRunner

    from mlre.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlre.yaml").write_text("target: y\ngap: 3\n")
    (tmp_path / "data.csv").write_text("x,y\n1,0\n2,1\n")
    before = (tmp_path / "mlre.yaml").read_text()
    done = CliRunner().invoke(app, ["run", "data.csv", "--target", "y"])
    assert done.exit_code == 2, done.output
    assert "it needs time_column" in done.output
    assert "Traceback" not in done.output
    assert (tmp_path / "mlre.yaml").read_text() == before and not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"targt": "y"}, ["unknown key 'targt'", "did you mean 'target'"]),
        ({"time_budgt": 3}, ["did you mean 'time_budget'"]),
        ({"constraints": {"interpretible": True}}, ["constraints.interpretible", "interpretable"]),
        ({"constraints": {"max_latency_ms": 0}}, ["max_latency_ms", "greater than 0"]),
        ({"constraints": {"max_model_mb": -1}}, ["max_model_mb", "greater than 0"]),
        ({"calendar": {"country": "Narnia"}}, ["no public holidays are known", "Narnia"]),
        ({"calendar": {"country": "US", "subdivision": "ZZ"}}, ["US has no subdivision 'ZZ'"]),
        ({"gap": 7}, ["needs time_column"]),
        ({"gap": -1, "time_column": "t"}, ["gap"]),
        ({"metric": "auc"}, ["unknown metric 'auc'", "roc_auc"]),
        ({"metric": "rmse", "task": "binary"}, ["does not fit a binary task"]),
        ({"time_budget": 0}, ["time_budget", "greater than 0"]),
        ({"task": "ranking"}, ["task"]),
        ({"seed": -1}, ["seed"]),
    ],
)
def test_invalid_specs_explain_themselves(values, words):
    with pytest.raises(SpecError) as err:
        build_spec(values)
    text = str(err.value)
    for word in words:
        assert word in text


def test_flags_override_the_file_and_unset_flags_do_not(tmp_path: Path):
    path = tmp_path / "mlre.yaml"
    path.write_text("target: y\nseed: 7\nsensitive: [sex]\n")
    spec = load_spec(path, seed=11, sensitive=None, id_columns=[])
    assert spec.seed == 11 and spec.sensitive == ["sex"] and spec.target == "y"


def test_mlre_yaml_in_the_working_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlre.yaml").write_text("target: churn\nmetric: log_loss\n")
    assert load_spec().metric == "log_loss"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("target: [unclosed\n", ["not valid YAML", "line"]),
        ("- a\n- b\n", ["mapping"]),
        ("targett: y\n", ["did you mean 'target'"]),
    ],
)
def test_bad_spec_files(tmp_path: Path, content: str, words: list[str]):
    path = tmp_path / "mlre.yaml"
    path.write_text(content)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    for word in words:
        assert word in str(err.value)


def test_missing_spec_file(tmp_path: Path):
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "nope.yaml")


def test_resolved_metric_defaults_per_task():
    spec = Spec()
    assert spec.resolved_metric("binary") == "roc_auc"
    assert spec.resolved_metric("multiclass") == "log_loss"
    assert spec.resolved_metric("regression") == "rmse"
    with pytest.raises(SpecError):
        Spec(metric="r2").resolved_metric("binary")
