"""The command line, through Typer's runner and through the installed ``mlre`` command."""

from __future__ import annotations

import gzip
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
from mlflow import MlflowClient
from typer.testing import CliRunner

from helpers import data_file, dataset
from mlre.cli import app

ADULT = data_file("adult")
GERMAN = data_file("german_credit")
runner = CliRunner()


def mlre(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def test_audit_prints_findings_and_passes_on_clean_data(store: Path):
    result = mlre("audit", ADULT, "--target", "income-per-year")
    assert result.exit_code == 0, result.output
    assert "32,561 rows × 15 columns" in result.stdout
    assert "disguised_missing" in result.stdout and "PASS" in result.stdout
    assert "recorded as MLflow run" in result.stdout


def test_audit_json_is_machine_readable(store: Path):
    result = mlre("audit", GERMAN, "--target", "credit", "--json", "--no-track")
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["summary"]["rows"] == 1000 and payload["summary"]["task"] == "binary"
    assert {"severity", "check", "message", "evidence", "fix"} <= set(payload["findings"][0])
    assert not (store / "mlruns.db").exists()


def test_an_error_finding_exits_1(store: Path):
    df = dataset("german_credit")
    df["decision"] = df["credit"] * 10
    path = store / "leaky.csv"
    df.to_csv(path, index=False)
    result = mlre("audit", path, "--target", "credit")
    assert result.exit_code == 1
    assert "target_leakage" in result.stdout and "FAIL" in result.stdout


def test_audit_with_a_test_file(store: Path):
    df = dataset("adult", rows=6000)
    train, test = store / "train.parquet", store / "test.parquet"
    df.iloc[:4000].to_parquet(train)
    df.iloc[3000:].to_parquet(test)  # 1,000 rows shared
    result = mlre(
        "audit", train, "--target", "income-per-year", "--test", test, "--json", "--no-track"
    )
    assert result.exit_code == 1
    checks = {f["check"] for f in json.loads(result.stdout)["findings"]}
    assert "train_test_overlap" in checks


def test_audit_from_sql(store: Path):
    db = store / "shop.duckdb"
    con = duckdb.connect(str(db))
    con.execute(f"create table customers as select * from read_csv_auto('{GERMAN}')")
    con.close()
    result = mlre(
        "audit",
        "--db",
        db,
        "--sql",
        "select * from customers where age > 20",
        "--target",
        "credit",
        "--no-track",
    )
    assert result.exit_code == 0, result.output
    assert "customers" in result.stdout


def test_spec_file_and_flags(store: Path):
    (store / "mlre.yaml").write_text("target: credit\nna_values: ['?']\n")
    assert mlre("audit", GERMAN, "--no-track").exit_code == 0
    (store / "mlre.yaml").write_text("target: credit\nmetrc: roc_auc\n")
    result = mlre("audit", GERMAN, "--no-track")
    assert result.exit_code == 2 and "did you mean 'metric'" in result.output


def test_init_writes_a_spec_and_never_overwrites_silently(store: Path):
    assert mlre("init", "--target", "churn").exit_code == 0
    spec = store / "mlre.yaml"
    assert "target: churn" in spec.read_text()
    spec.write_text(spec.read_text() + "# my notes\n")
    again = mlre("init")
    assert again.exit_code == 2 and "already exists" in again.output
    assert "# my notes" in spec.read_text()
    assert mlre("init", "--force").exit_code == 0 and "# my notes" not in spec.read_text()


def test_version_and_help():
    assert mlre("--version").stdout.startswith("mlre ")
    help_text = mlre("--help").stdout
    assert "audit" in help_text
    for panel in (
        "Data",
        "Models",
        "Experiments",
        "Fairness",
        "Causal effects",
        "Release",
        "Monitoring",
    ):
        assert f"─ {panel} ─" in help_text, help_text
    assert "compare-datasets" in help_text and "compare-runs" in help_text


def _bad_inputs(folder: Path) -> list[tuple[list[str], str]]:
    """Every bad input the audit must refuse: (arguments, words the message must contain)."""
    (folder / "empty.csv").write_bytes(b"")
    (folder / "header.csv").write_text("a,b,y\n")
    with gzip.open(folder / "ok.csv.gz", "wt") as fh:
        fh.write("a,b,y\n1,2,0\n3,4,1\n")
    (folder / "binary.csv").write_bytes(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
    )
    (folder / "latin.csv").write_bytes("name,y\ncaf\xe9,1\nna\xefve,0\n".encode("latin-1"))
    (folder / "ragged.csv").write_text("a,b,y\n1,2,0\n3,4,5,1\n")
    (folder / "dupes.csv").write_text("a,a,y\n1,2,0\n3,4,1\n")
    (folder / "broken.parquet").write_bytes(b"PAR1" + b"\x00garbage" * 20 + b"PAR1")
    (folder / "nothing").mkdir()
    (folder / "nothing" / "notes.md").write_text("no data here")
    (folder / "const.csv").write_text("a,y\n" + "".join(f"{i},1\n" for i in range(30)))
    (folder / "nolabel.csv").write_text("a,y\n" + "".join(f"{i},\n" for i in range(30)))
    con = sqlite3.connect(folder / "shop.sqlite")
    con.execute("create table orders (a int, y int)")
    con.commit()
    con.close()
    german = ["--target", "credit"]
    return [
        (["audit", folder / "missing.csv", *german], ["does not exist"]),
        (["audit", folder / "empty.csv", *german], ["is empty"]),
        (["audit", folder / "header.csv", "--target", "y"], ["header but no data rows"]),
        (["audit", GERMAN, "--target", "credt"], ["not a column", "did you mean 'credit'"]),
        (["audit", folder / "nolabel.csv", "--target", "y"], ["missing in every row"]),
        (["audit", folder / "const.csv", "--target", "y"], ["single value"]),
        (["audit", folder / "binary.csv", *german], ["binary data"]),
        (["audit", folder / "latin.csv", "--target", "y", "--encoding", "utf-8"], ["not valid"]),
        (["audit", folder / "ragged.csv", "--target", "y"], ["4 fields", "header has 3", "line 3"]),
        (["audit", folder / "dupes.csv", "--target", "y"], ["duplicate column names", "'a'"]),
        (["audit", folder / "broken.parquet", *german], ["not a readable Parquet"]),
        (
            [
                "audit",
                "--db",
                folder / "shop.sqlite",
                "--sql",
                "selec * from orders",
                "--target",
                "y",
            ],
            ["query failed", "orders"],
        ),
        (
            [
                "audit",
                "--db",
                folder / "shop.sqlite",
                "--sql",
                "select * from customers",
                "--target",
                "y",
            ],
            ["no such table"],
        ),
        (["audit", folder / "nothing", *german], ["no data files"]),
        (["audit", GERMAN, *german, "--task", "regression", "--seed", "-3"], ["seed"]),
    ]


def test_bad_input_gets_a_clear_message_and_leaves_the_store_intact(store: Path):
    good = mlre("audit", GERMAN, "--target", "credit")
    assert good.exit_code == 0
    db = store / "mlruns.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    [before] = client.search_runs([client.get_experiment_by_name("credit").experiment_id])
    snapshot = db.read_bytes()

    folder = store / "inputs"
    folder.mkdir()
    for args, words in _bad_inputs(folder):
        result = mlre(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "error:" in result.output and "Traceback" not in result.output, result.output
        assert "hint:" in result.output
        for word in words:
            assert word in result.output, (args, result.output)

    assert db.read_bytes() == snapshot
    assert sqlite3.connect(db).execute("pragma integrity_check").fetchone() == ("ok",)
    runs = client.search_runs([before.info.experiment_id])
    assert [r.info.run_id for r in runs] == [before.info.run_id]
    assert {a.path for a in client.list_artifacts(before.info.run_id, "audit")} >= {
        "audit/contract.json"
    }


def test_the_installed_command_and_python_m(store: Path):
    exe = Path(sys.executable).parent / "mlre"
    done = subprocess.run(
        [exe, "audit", GERMAN, "--target", "credit", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["run_id"]
    assert (store / "mlruns.db").is_file()
    missing = subprocess.run(
        [exe, "audit", store / "nope.csv", "--target", "y"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (
        missing.returncode == 2
        and "Traceback" not in missing.stderr
        and "does not exist" in missing.stderr
    )
    version = subprocess.run(
        [sys.executable, "-m", "mlre", "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0 and version.stdout.startswith("mlre ")


def test_tables_too_small_to_learn_from_are_refused(store: Path):
    good = mlre("audit", GERMAN, "--target", "credit")
    assert good.exit_code == 0
    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'mlruns.db'}")
    [before] = client.search_runs([client.get_experiment_by_name("credit").experiment_id])
    folder = store / "small"
    folder.mkdir()
    (folder / "three.csv").write_text("a,b,y\n1,3,0\n2,1,1\n3,2,0\n")
    (folder / "twelve.csv").write_text("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(12)))
    lone = "".join(f"{i},x\n" for i in range(199)) + "199,z\n"
    (folder / "lone.csv").write_text("a,y\n" + lone)
    (folder / "four.csv").write_text("a,y\n1,1.5\n2,2.5\n3,0.5\n4,7.0\n")
    ids = "".join(f"order-{i:05d}-{(i * 7919) % 10007},{i % 2}\n" for i in range(400))
    (folder / "ids.csv").write_text("order,y\n" + ids)
    cases = [
        ("three.csv", 1, ["only 3 labelled row(s)", "single row"]),  # the audit refuses it
        ("twelve.csv", 1, ["only 12 labelled row(s)", "too few"]),
        # forced past the audit, a search that cannot run at all is still refused
        ("three.csv", 2, ["single labelled row"]),
        ("lone.csv", 2, ["'z'", "single labelled row"]),
        ("four.csv", 2, ["only 4 labelled row(s)", "3 training row(s)", "cross-validate"]),
        # identifiers alone: nothing a model can read, said before any search
        ("ids.csv", 2, ["no column can feed a model", "order (identifier)"]),
    ]
    for name, code, words in cases:
        forced = ["--force"] if code == 2 else []
        result = mlre("run", folder / name, "--target", "y", "--time-budget", "5", *forced)
        assert result.exit_code == code, (name, result.output)
        assert "error:" in result.output and "hint:" in result.output, result.output
        assert "internal error" not in result.output and "Traceback" not in result.output
        for word in words:
            assert word in result.output, (name, result.output)
    # forced past the audit, a table too small to score honestly is searched, and says so
    forced = mlre("run", folder / "twelve.csv", "--target", "y", "--time-budget", "5",
                  "--force", "--no-track", "--no-report")  # fmt: skip
    assert forced.exit_code == 0, forced.output
    assert "! error: only 12 labelled row(s): too few to train and evaluate honestly" in (
        forced.output.replace("\n", " ")
    )
    # the refusals leave what was stored as it was, and register no model
    [after] = client.search_runs([before.info.experiment_id])
    assert after.info.run_id == before.info.run_id
    assert (after.data.params, after.data.metrics) == (before.data.params, before.data.metrics)
    assert not client.search_registered_models()


def test_a_budget_too_small_for_a_search_still_gives_a_model_and_says_so(store: Path):
    result = mlre("run", GERMAN, "--target", "credit", "--time-budget", "1", "--no-report")
    assert result.exit_code == 0, result.output
    assert "leaves little room to search" in result.output and "Traceback" not in result.output
    assert "final model:" in result.output
