"""The audit describes free-text columns and finds the same text under different labels."""

from __future__ import annotations

import pandas as pd

from helpers import audit, dataset, findings


def test_text_columns_are_described():
    df = dataset("fine_food_reviews")
    [note] = findings(audit(df, "score"), "text_column", "review")
    assert note.evidence["vocabulary"] > 5_000 and note.evidence["empty_share"] == 0
    assert 200 < note.evidence["mean_length"] < 800
    assert "becomes n-gram features" in note.message
    assert not findings(audit(df, "score"), "text_column", "product")


def test_the_same_text_under_two_labels_is_label_noise():
    df = dataset("fine_food_reviews").iloc[:600].reset_index(drop=True)
    assert not findings(audit(df, "score"), "text_label_conflict")
    copy = df.iloc[:5].copy()
    copy["review"] = copy["review"].str.upper() + "!!"  # the same words, shouted
    copy["score"] = copy["score"].map({"great": "other", "other": "great"})
    [clash] = findings(audit(pd.concat([df, copy], ignore_index=True), "score"),
                       "text_label_conflict", "review")  # fmt: skip
    assert clash.evidence["texts"] == 5 and clash.evidence["rows"] == 10


def test_roles_in_the_spec_override_the_guess(tmp_path):
    df = dataset("fine_food_reviews").iloc[:400]
    report = audit(df, "score", roles={"review": "category", "product": "text"})
    assert report.profiles["review"].role == "categorical"
    assert report.profiles["product"].role == "text"


def test_a_roles_entry_naming_no_column_is_refused_and_nothing_is_stored(store):
    from typer.testing import CliRunner

    from mlre.cli import app

    path = store / "reviews.csv"
    dataset("fine_food_reviews").iloc[:300].to_csv(path, index=False)
    (store / "mlre.yaml").write_text("target: score\nroles:\n  reveiw: text\n")
    done = CliRunner().invoke(app, ["run", str(path), "--time-budget", "5"])
    assert done.exit_code == 2, done.output
    text = " ".join(done.output.split())
    assert "column named in roles 'reveiw' is not a column" in text and "review" in text
    assert "Traceback" not in done.output and not (store / "mlruns.db").exists()
    # ignore leaves a column out entirely
    (store / "mlre.yaml").write_text("target: score\nroles:\n  product: ignore\n")
    done = CliRunner().invoke(app, ["audit", str(path), "--json", "--no-track"])
    assert done.exit_code in (0, 1), done.output
    assert '"product"' not in done.stdout
