"""Every `mlre run` ends with a report: HTML that works offline and Markdown, logged to MLflow,
rebuilt by `mlre report`, and drawn by a real browser without errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mlre
from helpers import data_file, dataset, tracked_credit_run
from mlre.cli import app
from mlre.errors import InputError
from mlre.report.render import SECTIONS, _plotly_js, render_html, render_markdown
from mlre.track.store import store_client

GERMAN = data_file("german_credit")
QUICK = ["lightgbm", "linear"]


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory):
    """One tracked run on german_credit, which writes report.html into its working folder."""
    yield from tracked_credit_run(tmp_path_factory.mktemp("report"), time_budget=35, families=QUICK)


def test_a_tracked_run_ends_with_a_self_contained_report(reported):
    folder, result = reported
    assert result.report_path == "report.html"
    html = (folder / "report.html").read_text(encoding="utf-8")
    md = (folder / "report.md").read_text(encoding="utf-8")
    for section, title in SECTIONS:
        if section == "fairness":  # only for runs that name sensitive columns
            assert 'id="fairness"' not in html and 'href="#fairness"' not in html
            continue
        assert f'id="{section}"' in html and title in html
    assert "no fairness audit was run" in md
    # offline: no script or stylesheet from the network, and the Plotly library inside, once
    assert "<script src" not in html and "<link" not in html
    assert html.count(_plotly_js()[:300]) == 1
    assert "## Executive summary" in md and "## Model card" in md
    data = result.report
    names = [d["name"] for d in data["diagnostics"]]
    assert names == ["intervals", "fit", "calibration", "curves", "slices", "learning_curve"]
    (main,) = [r for r in data["diagnostics"][0]["data"]["rows"] if r["metric"] == "roc_auc"]
    assert main["low"] <= result.holdout_score <= main["high"]
    assert data["importance"]["features"], "permutation importance of the served model"
    assert {f["feature"] for f in data["importance"]["features"]} <= set(result.scheme["features"])
    sh = data["shapley"]
    assert sh and sh["method"] == "shapley" and sh["output"] == "P(2)" and sh["rows"] >= 20
    assert {f["feature"] for f in sh["features"]} == set(result.scheme["features"])
    assert [d["feature"] for d in sh["dependence"]] == [f["feature"] for f in sh["features"][:3]]
    assert all(len(d["x"]) == len(d["shap"]) == sh["rows"] for d in sh["dependence"])
    deps = data["dependence"]
    # partial dependence follows the Shapley ranking
    assert [d["feature"] for d in deps] == [f["feature"] for f in sh["features"]][: len(deps)]
    assert deps and {d["feature"] for d in deps} <= set(result.scheme["features"])
    assert all(len(d["values"]) == len(d["average"]) >= 2 for d in deps)
    assert all(0 <= v <= 1 for d in deps for v in d["average"]), "probabilities of class '2'"
    assert "ranks a randomly chosen" in data["summary"]["how_well"]
    assert data["card"]["reproduce"].startswith("mlre run ")


def test_the_report_is_logged_to_the_run_and_rebuilt_from_it(reported, tmp_path):
    folder, result = reported
    client = store_client()
    logged = {Path(a.path).name for a in client.list_artifacts(result.run_id, "report")}
    assert logged == {"report.json", "report.html", "report.md"}
    rebuilt = mlre.build_report(result.run_id, tmp_path / "again.html")
    assert rebuilt.read_text(encoding="utf-8") == (folder / "report.html").read_text(
        encoding="utf-8"
    )
    assert (tmp_path / "again.md").read_text(encoding="utf-8") == (folder / "report.md").read_text(
        encoding="utf-8"
    )


def test_cli_report_and_its_bad_input(reported, tmp_path):
    folder, result = reported
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        done = runner.invoke(app, ["report", result.run_id, "-o", str(tmp_path / "cli.html")])
        assert done.exit_code == 0, done.output
        assert (tmp_path / "cli.html").exists() and (tmp_path / "cli.md").exists()
        latest = runner.invoke(app, ["report", "-o", str(tmp_path / "latest.html")])
        assert latest.exit_code == 0 and (tmp_path / "latest.html").exists()
        before = (folder / "report.html").read_bytes()
        bad = runner.invoke(app, ["report", "0" * 32, "-o", "report.html"])
        assert bad.exit_code == 2 and "Traceback" not in bad.output
        assert "has no report data" in bad.output
        assert (folder / "report.html").read_bytes() == before, "a failed call overwrote nothing"


def test_report_data_from_a_newer_mlre_is_refused(reported):
    _, result = reported
    newer = json.loads(json.dumps(result.report)) | {"version": 99}
    with pytest.raises(InputError, match="version 99"):
        render_html(newer)
    with pytest.raises(InputError, match="version 99"):
        render_markdown(newer)


def test_regression_and_multiclass_reports(tmp_path):
    diamonds = dataset("diamonds", rows=3000)
    reg = mlre.run(
        diamonds,
        target="price",
        time_budget=15,
        families=QUICK,
        track=False,
        report=tmp_path / "diamonds.html",
    )
    names = [d["name"] for d in reg.report["diagnostics"]]
    assert "residuals" in names and "calibration" not in names
    # a diamond's size drives its price: the most important column's partial dependence spans
    # thousands of dollars
    top = reg.report["dependence"][0]
    assert top["output"] == "prediction" and max(top["average"]) - min(top["average"]) > 1000
    assert "Residuals" in (tmp_path / "diamonds.html").read_text(encoding="utf-8")
    hpc = mlre.run(
        dataset("hpc_jobs"),
        target="class",
        time_budget=15,
        families=QUICK,
        track=False,
        report=tmp_path / "hpc.html",
    )
    curves = next(d for d in hpc.report["diagnostics"] if d["name"] == "curves")["data"]
    assert len(curves["curves"]) == 4 and len(curves["confusion"]) == 4


def test_no_report_when_asked_for_none(tmp_path):
    result = mlre.run(
        dataset("german_credit"), target="credit", time_budget=10, families=["linear"], track=False
    )
    assert result.report is None and result.report_path is None


# --------------------------------------------------------------------------- a real browser


def _browser() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _open(page: Path, out: Path) -> tuple[str, list[str]]:
    """Load ``page`` in headless Chromium: the DOM after its scripts ran, and console messages."""
    done = subprocess.run(
        [
            _browser(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--window-size=1280,2000",
            f"--screenshot={out}",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


@pytest.mark.skipif(
    _browser() is None,
    reason="Chromium is not installed (make test installs Debian's chromium package when it can)",
)
def test_the_report_draws_in_a_browser_without_errors(reported, tmp_path):
    folder, _ = reported
    # the console check catches a page error: prove it on a page that has one
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>notAFunction();</script></body></html>")
    _, console = _open(broken, tmp_path / "broken.png")
    assert any("notAFunction" in line for line in console)

    shot = folder / "report.png"
    dom, console = _open(folder / "report.html", shot)
    assert console == [], console
    for section, _ in SECTIONS:
        assert f'id="{section}"' in dom or section == "fairness"  # no sensitive columns named
    # Plotly replaced every figure placeholder with a drawn plot
    figures = [
        f"fig-{name}"
        for name in (
            "leaderboard",
            "calibration",
            "roc",
            "shapley",
            "shapley_dependence_0",
            "importance",
            "dependence_0",
        )
    ]
    for fig in figures:
        start = dom.index(f'id="{fig}"')
        assert "plot-container" in dom[start : start + 400], fig
    assert shot.exists() and shot.stat().st_size > 20_000
