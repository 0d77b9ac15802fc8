"""Free text as features: TF-IDF n-grams fitted inside each fold, a linear text model whose
training-row predictions are out of fold, latent topics; end to end on real reviews."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import mlre
from helpers import DATASETS, dataset
from mlre.features.text import MAX_CHARS, TextFeatures


@pytest.fixture(scope="module")
def reviews() -> pd.DataFrame:
    return dataset("fine_food_reviews")


def test_the_text_model_never_scores_a_row_with_its_own_label(reviews):
    X = reviews[["review"]].iloc[:1500].reset_index(drop=True)
    noise = np.random.default_rng(0).integers(0, 2, len(X))  # labels no text can predict
    features = TextFeatures()
    training = features.fit_transform(X, noise)
    in_sample = features.transform(X)
    column = "review__text_model_0"
    # fitted on those very labels, the model recalls them; its training-row features, each
    # from a model that never saw that row, know nothing
    assert roc_auc_score(noise, in_sample[column]) > 0.9
    assert abs(roc_auc_score(noise, training[column]) - 0.5) < 0.06
    assert list(training.columns) == list(in_sample.columns)
    assert any(c.startswith("review__topic_") for c in training.columns)


def test_words_that_carry_the_label_are_the_ones_it_names(reviews):
    X, y = reviews[["review"]], (reviews["score"] == "great").astype(int).to_numpy()
    features = TextFeatures().fit(X, y)
    terms = features.top_terms("review", n=40)
    up = {t for t, _ in terms["up"]}
    down = {t for t, _ in terms["down"]}
    assert up & {"great", "best", "love", "delicious", "perfect", "excellent"}
    assert down & {"not", "disappointed", "bad", "but", "unfortunately", "waste"}


def test_empty_huge_and_missing_texts_are_features_not_failures():
    rng = np.random.default_rng(0)
    words = np.array(["red", "green", "blue", "fast", "slow", "cheap", "dear"])
    texts = [" ".join(rng.choice(words, 6)) for _ in range(300)]
    texts[0] = "x " * 3_000_000  # a 6 MB text: read up to its first MAX_CHARS characters
    texts[1], texts[2] = None, ""
    X = pd.DataFrame({"note": texts, "blank": [""] * 300})
    y = np.array(["cheap" in (t or "") for t in texts], dtype=int)
    out = TextFeatures().fit_transform(X, y)
    assert len(out) == 300 and np.isfinite(out.to_numpy()).all()
    assert not any(c.startswith("blank__") for c in out.columns)  # nothing to learn from
    assert roc_auc_score(y, out["note__text_model_0"]) > 0.9
    assert MAX_CHARS < 6_000_000


def test_a_table_of_reviews_is_learned_from_its_text(reviews):
    result = mlre.run(reviews, target="score", time_budget=25, track=False, report=False,
                      families=["linear", "lightgbm"])  # fmt: skip
    assert result.scheme["ignored"] == {"product": "identifier"}
    assert "review" in result.scheme["features"]
    test = pd.read_csv(DATASETS / "fine_food_reviews" / "test.csv.gz")
    proba = result.model.predict_proba(test.drop(columns=["score"]))
    great = list(result.model.classes_).index("great")
    # the review carries nearly all the signal: without it a model is at chance
    assert roc_auc_score(test["score"] == "great", proba[:, great]) > 0.8
    assert result.holdout_score > 0.8
    # the report names the words that move a prediction, and towards which class
    terms = result.scheme["text_terms"]["review"]
    assert terms["towards"] == "other"
    assert {t for t, _ in terms["down"]} & {"great", "best", "love", "delicious", "perfect"}
