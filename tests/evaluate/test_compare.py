"""`mlre compare`: candidates on the same repeated folds, real fits, real MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from helpers import DATASETS, data_file, dataset
from mlre.api.compare import compare
from mlre.cli import app

INTERACTION = 'def transform(X):\n    return X.assign(x1_x2=X["x1"] * X["x2"])\n'
NOISE = (
    "import numpy as np\n\n"
    "def transform(X):\n"
    "    return X.assign(noise=np.random.default_rng(len(X)).standard_normal(len(X)))\n"
)
FOREST = (
    "from sklearn.ensemble import RandomForestClassifier\n\n"
    'PREPROCESSING = "plain"\n\n'
    "def make_estimator(task, seed):\n"
    "    return RandomForestClassifier(n_estimators=30, random_state=seed)\n"
)
BAD_IDEAS = {
    "does_not_import.py": ("import a_package_that_does_not_exist\n", "does not import"),
    "empty_idea.py": ("X = 1\n", "exposes no estimator and no transformer"),
    "raises_in_fit.py": (
        "from sklearn.linear_model import LogisticRegression\n\n"
        "class Broken(LogisticRegression):\n"
        "    def fit(self, X, y):\n"
        '        raise ValueError("this idea is not finished")\n\n'
        "estimator = Broken()\n",
        "fit raised ValueError: this idea is not finished (line 5)",
    ),
    "wrong_shape.py": (
        "from sklearn.linear_model import LogisticRegression\n\n"
        "class OneColumn(LogisticRegression):\n"
        "    def predict_proba(self, X):\n"
        "        return super().predict_proba(X)[:, :1]\n\n"
        "def make_estimator(task, seed):\n"
        "    return OneColumn(max_iter=500)\n",
        "predict_proba gave shape",
    ),
}


def _synthetic(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 4))
    logit = 0.8 * x[:, 2] + 1.5 * x[:, 0] * x[:, 1]
    y = rng.random(rows) < 1 / (1 + np.exp(-logit))
    df = pd.DataFrame(x, columns=["x1", "x2", "x3", "x4"])
    df["y"] = np.where(y, "yes", "no")
    return df


def _write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def test_an_informative_feature_helps_and_a_useless_one_does_not(tmp_path):
    df = _synthetic()
    result = compare(
        df,
        [
            "linear",
            _write(tmp_path, "interaction.py", INTERACTION),
            _write(tmp_path, "noise.py", NOISE),
        ],
        target="y",
        repeats=3,
        folds=5,
        track=False,
    )
    assert result.baseline == "linear"
    assert [c.name for c in result.candidates] == ["linear", "linear+interaction", "linear+noise"]
    assert all(len(c.scores) == 15 and np.isfinite(c.scores).all() for c in result.candidates)
    helps, noise = result.comparisons
    assert helps.verdict == "helps" and helps.difference > 0.02 and helps.low > 0
    assert helps.p_better > 0.9 and helps.p_adjusted < 0.05
    assert "linear+interaction improves roc_auc by" in helps.sentence
    assert noise.verdict != "helps"
    assert noise.p_adjusted >= noise.p_value  # Holm over the two ideas


def test_model_ideas_and_families_on_real_data_are_tracked(store, tmp_path):
    forest = _write(tmp_path, "forest.py", FOREST)
    result = compare(
        data_file("german_credit"),
        ["lightgbm", forest],
        target="credit",
        repeats=2,
        folds=3,
    )
    assert [c.kind for c in result.candidates] == ["family", "model idea"]
    (comparison,) = result.comparisons
    assert comparison.baseline == "lightgbm" and comparison.candidate == "forest"
    assert comparison.low <= comparison.difference <= comparison.high
    assert result.run_id is not None

    from mlre.track.store import store_client

    client = store_client()
    parent = client.get_run(result.run_id)
    assert parent.data.tags["mlre.kind"] == "compare" and parent.info.status == "FINISHED"
    assert parent.data.params["baseline"] == "lightgbm"
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{result.run_id}'"
    )
    by_name = {c.info.run_name: c for c in children}
    assert set(by_name) == {"lightgbm", "forest"}
    assert by_name["forest"].data.tags["mlre.verdict"] == comparison.verdict
    folds = client.get_metric_history(by_name["forest"].info.run_id, "fold_roc_auc")
    assert [m.value for m in folds] == pytest.approx(list(result.candidates[1].scores))
    saved = json.loads(
        Path(client.download_artifacts(result.run_id, "compare/compare.json")).read_text()
    )
    assert saved["comparisons"][0]["verdict"] == comparison.verdict


def test_broken_ideas_are_named_with_their_reason_and_the_rest_is_compared(tmp_path):
    paths = [_write(tmp_path, name, text) for name, (text, _) in BAD_IDEAS.items()]
    result = compare(
        dataset("german_credit", rows=300),
        ["linear", *paths, "lightgbm"],
        target="credit",
        repeats=1,
        folds=3,
        track=False,
    )
    failed = {c.name: c.error for c in result.failures}
    assert set(failed) == {Path(p).stem for p in paths}
    for name, (_, reason) in BAD_IDEAS.items():
        assert name in failed[Path(name).stem] and reason in failed[Path(name).stem]
    assert [c.candidate for c in result.comparisons] == ["lightgbm"]
    errors = [f for f in result.findings() if f.check == "compare_candidate_failed"]
    assert len(errors) == len(BAD_IDEAS)


def test_the_command_prints_verdicts_and_errors_without_a_traceback(store, tmp_path):
    data = tmp_path / "synthetic.csv"
    _synthetic(400).to_csv(data, index=False)
    idea = _write(tmp_path, "interaction.py", INTERACTION)
    broken = _write(tmp_path, "does_not_import.py", BAD_IDEAS["does_not_import.py"][0])
    runner = CliRunner()
    done = runner.invoke(
        app,
        [
            "compare",
            "--data",
            str(data),
            "--target",
            "y",
            "linear",
            idea,
            broken,
            "--repeats",
            "2",
            "--folds",
            "5",
        ],
    )
    assert done.exit_code == 2, done.output
    assert "helps" in done.output and "linear+interaction" in done.output
    assert "does_not_import.py does not import" in done.output
    assert "Traceback" not in done.output
    as_json = runner.invoke(
        app,
        [
            "compare",
            "--data",
            str(data),
            "--target",
            "y",
            "linear",
            idea,
            "--repeats",
            "2",
            "--folds",
            "5",
            "--json",
            "--no-track",
        ],
    )
    assert as_json.exit_code == 0, as_json.output
    payload = json.loads(as_json.output)
    assert payload["comparisons"][0]["verdict"] == "helps" and payload["run_id"] is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["lightgbm"], "at least two candidates"),
        (["lightgbm", "lightgbmm"], "neither a model family nor an idea file"),
        (["lightgbm", "missing_idea.py"], "does not exist"),
    ],
)
def test_bad_candidate_lists_are_clear_errors(store, tmp_path, args, message):
    data = tmp_path / "synthetic.csv"
    _synthetic(100).to_csv(data, index=False)
    done = CliRunner().invoke(
        app,
        [
            "compare",
            "--data",
            str(data),
            "--target",
            "y",
            *args,
            "--no-track",
            "--repeats",
            "1",
            "--folds",
            "2",
        ],
    )
    assert message in done.output and "Traceback" not in done.output


@pytest.mark.parametrize(
    "args, command",
    [
        (
            ["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"],
            "mlre compare-runs RUN_A RUN_B",
        ),
        (["--datasets", "sets", "--target-from-meta", "lightgbm", "linear"], "compare-datasets"),
        (["--data", "d.csv", "--target", "y", "lightgbm", "linear", "-o", "p.html"], "--output"),
    ],
)
def test_the_old_combined_forms_name_the_command_that_does_it_now(store, args, command):
    done = CliRunner().invoke(app, ["compare", *args])
    assert done.exit_code == 2, done.output
    assert command in done.output and "Traceback" not in done.output
    assert len(done.output.strip().splitlines()) == 1, done.output


def test_the_command_across_data_sets_ranks_them_and_writes_the_page(store, tmp_path):
    folder = tmp_path / "sets"
    for seed in range(3):
        (folder / f"set{seed}").mkdir(parents=True)
        _synthetic(200, seed).to_csv(folder / f"set{seed}" / "data.csv", index=False)
    page = tmp_path / "across.html"
    done = CliRunner().invoke(
        app,
        ["compare-datasets", str(folder), "linear", "knn", "--target", "y",
         "--repeats", "1", "--folds", "2", "-o", str(page), "--no-track"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "set0" in done.output and "mean rank (1 = best)" in done.output
    assert "critical-difference diagram" in done.output
    assert "Plotly.newPlot" in page.read_text()
    assert not (store / "mlruns.db").exists()


def test_across_data_sets_ranks_candidates_and_draws_the_critical_difference(store, tmp_path):
    import shutil

    from mlre.api.across import compare_datasets
    from mlre.evaluate.across import critical_difference_figure

    folder = tmp_path / "sets"
    for name in ("german_credit", "hpc_jobs", "diamonds", "telco_churn", "lalonde_nsw_dw"):
        (folder / name).mkdir(parents=True)
        shutil.copy(DATASETS / name / "meta.json", folder / name / "meta.json")
        dataset(name, rows=300).to_csv(folder / name / "data.csv.gz", index=False)
    (folder / "empty").mkdir()
    across = compare_datasets(
        folder,
        ["lightgbm", "linear", "knn"],
        target_from_meta=True,
        repeats=1,
        folds=3,
        max_rows=300,
    )
    assert set(across.table()) == {"german_credit", "hpc_jobs", "diamonds", "telco_churn"}
    assert "not a prediction task" in across.skipped["lalonde_nsw_dw"]
    assert across.skipped["empty"] == "no data file"
    ranks = across.ranks
    assert ranks.n_datasets == 4 and all(1 <= r <= 3 for r in ranks.mean_ranks)
    assert sum(ranks.mean_ranks) == pytest.approx(1 + 2 + 3)
    assert ranks.critical_difference == pytest.approx(2.343 * np.sqrt(3 * 4 / (6 * 4)), abs=2e-3)
    assert ranks.p_value is not None
    assert [p.candidate for p in across.pairs] == ["linear", "knn"]
    for p in across.pairs:
        assert p.wins + p.losses + p.ties == 4
        assert p.p_better + p.p_equivalent + p.p_worse == pytest.approx(1.0)
        assert "data sets" in p.sentence and "critical difference" in p.sentence
    figure = critical_difference_figure(ranks)
    assert sorted(figure["data"][0]["x"]) == sorted(ranks.mean_ranks)
    from mlre.evaluate.across import across_html

    page = across_html(across)
    assert "german_credit" in page and "Plotly.newPlot" in page and "<script src" not in page
    assert across.run_id is not None


def _load_in_step(barrier, texts: list[str], failures) -> None:
    from mlre.evaluate.ideas import IdeaCode, IdeaError

    for text in texts:
        barrier.wait()  # every worker loads the same new idea at the same moment
        try:
            IdeaCode("/ideas/idea.py", text, None).load()
        except IdeaError as err:
            failures.put(err.message)


def test_workers_loading_one_idea_at_once_each_import_the_whole_file():
    # the workers of one machine write the idea's copy into one shared folder: one that wrote it
    # in place while another imported it gave that one a part of the file ("exposes no
    # estimator and no transformer"), about one load in ten with three workers
    import multiprocessing
    import uuid

    run = uuid.uuid4().hex  # texts no earlier run has written
    body = (
        "from sklearn.linear_model import LogisticRegression\n\nestimator = LogisticRegression()\n"
    )
    texts = [f"{body}# {run} {i}\n{'#' * 5000}\n" for i in range(40)]
    context = multiprocessing.get_context("fork")
    barrier, failures = context.Barrier(3), context.Queue()
    workers = [
        context.Process(target=_load_in_step, args=(barrier, texts, failures)) for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert all(worker.exitcode == 0 for worker in workers)
    seen = []
    while not failures.empty():
        seen.append(failures.get())
    assert seen == []
