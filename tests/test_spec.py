"""The objective spec: validation, suggestions for typos, CLI overrides, the template."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlre.errors import SpecError
from mlre.spec import Spec, build_spec, load_spec, render_template


def test_template_is_valid_and_commented():
    text = render_template(target="income")
    assert text.count("#") > 15
    spec = build_spec(yaml.safe_load(text))
    assert spec.target == "income" and spec.time_budget == 300 and spec.project_name == "income"


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"targt": "y"}, ["unknown key 'targt'", "did you mean 'target'"]),
        ({"time_budgt": 3}, ["did you mean 'time_budget'"]),
        ({"constraints": {"max_latency": 5}}, ["constraints.max_latency", "max_latency_ms"]),
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
