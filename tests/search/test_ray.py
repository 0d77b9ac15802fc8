"""The search on a real local Ray (two CPUs): the same run as a local one, and a worker killed
in the middle of it."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import ray
from typer.testing import CliRunner

import mlre
from helpers import data_file, dataset, trial_data
from mlre.cli import app
from mlre.errors import InputError
from mlre.search.executor import RayExecutor
from mlre.track.store import store_client, tracking_uri

pytestmark = pytest.mark.slow

FAMILIES = ["lightgbm", "linear"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _ours(pid: int) -> bool:
    """Whether ``pid`` descends from this test process (a worker of the Ray it started)."""
    while pid > 1:
        pid = _parent(pid)
        if pid == os.getpid():
            return True
    return False


def _fit_processes() -> list[int]:
    """Workers of this test's Ray running a fit right now."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"ray::_run_remote") and _ours(int(pid)):
            found.append(int(pid))
    return found


def test_a_run_on_ray_is_recorded_as_a_local_run_is(local_ray, store: Path, monkeypatch):
    data = data_file("german_credit")
    local = mlre.run(data, target="credit", time_budget=20, families=FAMILIES, report=False)
    on_ray = mlre.run(
        data, target="credit", time_budget=20, families=FAMILIES, report=False, ray="auto"
    )
    assert on_ray.scheme["executor"] == {"backend": "ray", "slots": 2, "nodes": 1}
    assert local.scheme["executor"]["backend"] == "local"
    # the same leaderboard columns, trials numbered from 0, every one finished or stopped
    assert all(sorted(r) == sorted(local.leaderboard[0]) for r in on_ray.leaderboard)
    assert sorted(r["trial"] for r in on_ray.leaderboard) == list(range(len(on_ray.leaderboard)))
    finished = [r for r in on_ray.leaderboard if r["status"] == "ok"]
    assert {r["family"] for r in finished} == set(FAMILIES)
    assert all(r["retries"] == 0 and r["error"] is None for r in on_ray.leaderboard)
    # the fitted models came back: a sound holdout score, close to the local run's
    assert on_ray.holdout_score > on_ray.baseline["roc_auc"] + 0.1
    assert abs(on_ray.holdout_score - local.holdout_score) < 0.05
    # MLflow holds both runs the same way: a child per trial, and a registered model each
    client = store_client()
    for result in (local, on_ray):
        children = client.search_runs(
            [client.get_run(result.run_id).info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'",
        )
        assert len(children) == len(result.leaderboard)
    versions = client.search_model_versions("name = 'credit'")
    assert {v.run_id for v in versions} == {local.run_id, on_ray.run_id}
    # the version registered last is the Ray run's, and serves its model
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri())
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", tracking_uri())
    served = mlflow.pyfunc.load_model("models:/credit@candidate")
    rows = dataset("german_credit").drop(columns=["credit"]).head(5)
    assert np.allclose(
        served.predict(rows)[["proba_1", "proba_2"]].to_numpy(), on_ray.model.predict_proba(rows)
    )


def test_a_worker_killed_mid_run_leaves_a_finished_run_that_says_so(local_ray, store: Path):
    killed: list[int] = []

    def kill_one_fit() -> None:
        end = time.monotonic() + 60
        while time.monotonic() < end and not killed:
            for pid in _fit_processes():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_fit, daemon=True)
    killer.start()
    started = time.monotonic()
    result = mlre.run(
        data_file("german_credit"),
        target="credit",
        time_budget=25,
        families=FAMILIES,
        report=False,
        ray="auto",
    )
    killer.join()
    assert killed, "no fit was running to be killed"
    assert time.monotonic() - started < 25 + 10  # the budget held, Ray's overhead included
    hit = [r for r in result.leaderboard if r["retries"] or "worker" in (r["error"] or "")]
    assert hit, "the killed fit is on no trial's record"
    assert any(r["status"] == "ok" for r in result.leaderboard)
    lost = result.findings.by_check("worker_lost")
    assert len(lost) == 1 and "lost a worker" in lost[0].message
    # the run's record in MLflow carries the trial that lost its worker and the finding
    client = store_client()
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    board = json.loads(
        Path(client.download_artifacts(result.run_id, "leaderboard.json")).read_text()
    )
    assert any(r["retries"] for r in board if r["trial"] in {h["trial"] for h in hit})


def test_a_fit_that_raises_on_a_worker_fails_its_trial_with_the_reason(local_ray):
    from mlre.models.families import FAMILIES as ZOO
    from mlre.search.schedule import run_trial

    data = trial_data("german_credit", "credit", "binary", "roc_auc")[0]
    executor = RayExecutor("auto")
    result = run_trial(
        0,
        ZOO["lightgbm"],
        {"num_leaves": -5},
        data,
        phase="tuning",
        deadline=time.monotonic() + 60,
        executor=executor,
    )
    assert result.status == "failed" and result.error.startswith("LightGBMError")
    assert "num_leaves" in result.error and result.retries == 0


def test_an_unreachable_cluster_is_a_clear_error(store: Path):
    if ray.is_initialized():
        ray.shutdown()
    with pytest.raises(InputError, match="cannot reach the Ray cluster"):
        RayExecutor("127.0.0.1:1")
    done = CliRunner().invoke(
        app,
        [
            "run",
            str(data_file("german_credit")),
            "--target",
            "credit",
            "--time-budget",
            "10",
            "--ray",
            "127.0.0.1:1",
        ],
    )
    assert done.exit_code == 2 and "cannot reach the Ray cluster" in done.output
    assert "Traceback" not in done.output


def test_compare_on_ray_scores_every_split_as_a_local_compare_does(local_ray, tmp_path):
    from mlre.api.compare import compare

    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 3))
    df = pd.DataFrame(x, columns=["x1", "x2", "x3"])
    df["y"] = np.where(x[:, 0] * x[:, 1] + 0.5 * x[:, 2] + rng.normal(size=400) > 0, "a", "b")
    (tmp_path / "product.py").write_text(
        'def transform(X):\n    return X.assign(x1_x2=X["x1"] * X["x2"])\n'
    )
    (tmp_path / "broken.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n\n"
        "class Broken(LogisticRegression):\n"
        "    def fit(self, X, y):\n"
        '        raise ValueError("not finished")\n\n'
        "estimator = Broken()\n"
    )
    names = ["linear", str(tmp_path / "product.py"), str(tmp_path / "broken.py")]
    options = {"target": "y", "repeats": 2, "folds": 3, "track": False}
    here = compare(df, names, **options)
    there = compare(df, names, ray="auto", **options)
    for a, b in zip(here.candidates, there.candidates, strict=True):
        assert a.name == b.name and a.error == b.error
        assert np.allclose(a.scores, b.scores, equal_nan=True)
    broken = there.candidates[2]
    assert "not finished (line 5)" in broken.error and str(tmp_path / "broken.py") in broken.error
    assert there.comparisons[0].verdict == here.comparisons[0].verdict
