"""Free text as features: TF-IDF of word and character n-grams, made compact for every model.

Each text column becomes a TF-IDF matrix of word 1-2-grams and, for short texts, character
2-5-grams (on the first ``CHAR_PREFIX`` characters of each text), fitted on the rows the pipeline
is fitted on (inside each fold). Two kinds of dense columns come out of it:

- a linear model of the target on the sparse matrix (ridge regression of the quantity, or of
  each class's indicator: one column for two classes): on the training rows its out-of-fold
  predictions (``fit_transform``; an inner 5-fold split of the rows it is given, so no row's
  own label reaches its feature), on new rows the prediction of the model fitted on all;
- ``SVD_COMPONENTS`` components of a truncated SVD of the matrix (latent topics), for what the
  linear model does not carry.

Trees, linear models and the MLP all read those columns; numbers and categories keep their own
treatment beside them.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin

#: Characters of each text the n-grams read at most (a 50 MB text is not 50 MB of features).
MAX_CHARS = 5_000
#: Character n-grams read this prefix of each text, and only for columns up to this many
#: characters in all (beyond, word n-grams alone keep the matrix in memory).
CHAR_PREFIX = 400
CHAR_BUDGET = 40_000_000
#: Character n-grams are made for short texts (titles, names, descriptions: at most this many
#: characters on average), where words are few and spellings vary; on longer texts the words
#: carry the signal and character n-grams mostly add noise and memory.
SHORT_TEXT = 120
#: Vocabulary caps, and the latent components kept.
MAX_WORDS = 50_000
MAX_CHAR_GRAMS = 50_000
SVD_COMPONENTS = 16
#: Inner folds of the out-of-fold linear text model.
INNER_FOLDS = 5


def text_values(s: pd.Series) -> list[str]:
    """A column's values as texts: missing ones empty, each cut at ``MAX_CHARS``."""
    return [v[:MAX_CHARS] if isinstance(v, str) else "" for v in s.to_numpy(dtype=object)]


class TextFeatures(TransformerMixin, BaseEstimator):
    """Each text column as the out-of-fold prediction of a linear model on its TF-IDF n-grams
    and a few SVD components of them (see the module's description)."""

    #: ``fit_transform`` gives the training rows out-of-fold features, not ``transform``'s
    OWN_TRAINING_OUTPUT = True

    def __init__(self, seed: int = 0):
        self.seed = seed

    # ------------------------------------------------------------------ fitting

    def _vectorizers(self, texts: list[str]) -> list[tuple[str, Any]]:
        from sklearn.feature_extraction.text import TfidfVectorizer

        words = TfidfVectorizer(
            ngram_range=(1, 2), min_df=2, max_features=MAX_WORDS, sublinear_tf=True,
            dtype=np.float32,
        )  # fmt: skip
        out: list[tuple[str, Any]] = [("words", words)]
        lengths = [len(t) for t in texts]
        short = bool(lengths) and float(np.mean(lengths)) <= SHORT_TEXT
        if short and sum(min(n, CHAR_PREFIX) for n in lengths) <= CHAR_BUDGET:
            chars = TfidfVectorizer(
                analyzer="char_wb", ngram_range=(2, 5), min_df=3, max_features=MAX_CHAR_GRAMS,
                sublinear_tf=True, dtype=np.float32, preprocessor=_char_prefix,
            )  # fmt: skip
            out.append(("chars", chars))
        return out

    def _matrix(self, column: str, texts: list[str], fit: bool) -> sparse.csr_matrix:
        parts = []
        for _, vec in self.vectorizers_[column]:
            try:
                parts.append(vec.fit_transform(texts) if fit else vec.transform(texts))
            except ValueError:  # no term survives (e.g. every text empty): no columns
                if fit:
                    vec.vocabulary_ = {}
                parts.append(sparse.csr_matrix((len(texts), 0), dtype=np.float32))
        return sparse.hstack(parts, format="csr", dtype=np.float32)

    def _targets(self, target: np.ndarray) -> np.ndarray:
        """What the linear text model fits: the quantity, or one indicator column per class
        (one column for two classes)."""
        if self.task_ == "regression":
            return target.astype(np.float64).reshape(-1, 1)
        Y = (target.reshape(-1, 1) == self.classes_.reshape(1, -1)).astype(np.float64)
        return Y[:, 1:] if self.n_classes_ == 2 else Y

    def _linear(self, M: sparse.csr_matrix, Y: np.ndarray) -> Any:
        """Ridge regression of ``Y`` on the n-grams: fast on a sparse matrix and, on the
        indicators of classes, as good a ranking as a logistic model on text."""
        from sklearn.linear_model import Ridge

        return Ridge(alpha=1.0, solver="sparse_cg", random_state=self.seed).fit(M, Y)

    @staticmethod
    def _scores(model: Any, M: sparse.csr_matrix) -> np.ndarray:
        return np.asarray(model.predict(M), dtype=np.float64).reshape(M.shape[0], -1)

    def fit(self, X: pd.DataFrame, y: Any = None) -> TextFeatures:
        self._fit(X, y)
        return self

    def fit_transform(self, X: pd.DataFrame, y: Any = None, **_: Any) -> pd.DataFrame:
        """The training rows' features: the linear text model's out-of-fold predictions (each
        row scored by a model that never saw its label) and the SVD components."""
        return self._fit(X, y)

    def _fit(self, X: pd.DataFrame, y: Any) -> pd.DataFrame:
        from sklearn.decomposition import TruncatedSVD

        self.columns_ = list(X.columns)
        self.vectorizers_: dict[str, list[tuple[str, Any]]] = {}
        self.linear_: dict[str, Any] = {}
        self.svd_: dict[str, Any] = {}
        target = None if y is None else np.asarray(y)
        # mlre encodes a quantity as floats and classes as integer codes
        self.task_ = "regression" if target is None or target.dtype.kind == "f" else "classes"
        if target is not None and self.task_ != "regression":
            self.classes_ = np.unique(target)
            self.n_classes_ = len(self.classes_)
        blocks = []
        for c in self.columns_:
            texts = text_values(X[c])
            self.vectorizers_[c] = self._vectorizers(texts)
            M = self._matrix(c, texts, fit=True)
            scores = None
            if target is not None and M.shape[1] and self._learnable(target):
                scores = self._out_of_fold(M, target)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self.linear_[c] = self._linear(M, self._targets(target))
            k = min(SVD_COMPONENTS, M.shape[1] - 1, M.shape[0] - 1)
            if k >= 1:
                svd = TruncatedSVD(n_components=k, random_state=self.seed)
                topics = svd.fit_transform(M).astype(np.float64)
                self.svd_[c] = svd
            else:
                topics = np.zeros((len(texts), 0))
            blocks.append(self._frame(c, scores, topics, X.index))
        self.feature_names_out_ = np.asarray([n for b in blocks for n in b.columns], dtype=object)
        return pd.concat(blocks, axis=1) if blocks else pd.DataFrame(index=X.index)

    def _learnable(self, target: np.ndarray) -> bool:
        if self.task_ == "regression":
            return bool(np.isfinite(target).all()) and float(np.std(target)) > 0
        return (
            self.n_classes_ >= 2
            and int(np.bincount(np.searchsorted(self.classes_, target)).min()) >= 2
        )

    def _out_of_fold(self, M: sparse.csr_matrix, target: np.ndarray) -> np.ndarray:
        from sklearn.model_selection import KFold, StratifiedKFold

        k = INNER_FOLDS
        if self.task_ != "regression":
            counts = np.bincount(np.searchsorted(self.classes_, target))
            k = max(2, min(k, int(counts.min())))
            splitter: Any = StratifiedKFold(k, shuffle=True, random_state=self.seed)
        else:
            splitter = KFold(k, shuffle=True, random_state=self.seed)
        Y = self._targets(target)
        out = np.zeros(Y.shape)
        for train, valid in splitter.split(np.zeros(M.shape[0]), target):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = self._linear(M[train], Y[train])
            out[valid] = self._scores(model, M[valid])
        return out

    # ------------------------------------------------------------------ transforming

    def _frame(
        self, column: str, scores: np.ndarray | None, topics: np.ndarray, index: pd.Index
    ) -> pd.DataFrame:
        data: dict[str, np.ndarray] = {}
        if scores is not None:
            for j in range(scores.shape[1]):
                data[f"{column}__text_model_{j}"] = scores[:, j]
        for j in range(topics.shape[1]):
            data[f"{column}__topic_{j}"] = topics[:, j]
        return pd.DataFrame(data, index=index)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        blocks = []
        for c in self.columns_:
            M = self._matrix(c, text_values(X[c]), fit=False)
            linear = self.linear_.get(c)
            scores = None if linear is None else self._scores(linear, M)
            svd = self.svd_.get(c)
            topics = (
                np.zeros((M.shape[0], 0)) if svd is None else svd.transform(M).astype(np.float64)
            )
            blocks.append(self._frame(c, scores, topics, X.index))
        out = pd.concat(blocks, axis=1) if blocks else pd.DataFrame(index=X.index)
        return out[list(self.feature_names_out_)]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return self.feature_names_out_

    def top_terms(self, column: str, n: int = 15) -> dict[str, Any]:
        """The n-grams the column's linear text model weighs most each way (towards its last
        class, for a classifier): what pushes a prediction up, and what pulls it down."""
        model = self.linear_.get(column)
        towards = None if self.task_ == "regression" else self.classes_[-1].item()
        if model is None:
            return {"up": [], "down": [], "towards": towards}
        names = [t for _, vec in self.vectorizers_[column] for t in _terms(vec)]
        coef = np.asarray(model.coef_, dtype=float)
        coef = coef[-1] if coef.ndim == 2 else coef
        order = np.argsort(coef)
        return {
            "up": [(names[i], float(coef[i])) for i in order[::-1][:n] if coef[i] > 0],
            "down": [(names[i], float(coef[i])) for i in order[:n] if coef[i] < 0],
            # the class (its code) the weights point to; None: a quantity, up is larger
            "towards": towards,
        }


def pipeline_terms(pipelines: list[Any], n: int = 12) -> dict[str, dict[str, Any]]:
    """The n-grams that push a model's predictions each way, text column by text column, from
    the first of ``pipelines`` (fitted mlre pipelines) whose preprocessing has a text part."""
    for pipe in pipelines:
        prep = getattr(pipe, "named_steps", {}).get("prep")
        stack = getattr(prep, "named_steps", {}).get("columns") if prep is not None else None
        for _, fitted, _ in getattr(stack, "parts_", []):
            if isinstance(fitted, TextFeatures):
                return {c: fitted.top_terms(c, n) for c in fitted.columns_}
    return {}


def _terms(vectorizer: Any) -> list[str]:
    vocabulary = getattr(vectorizer, "vocabulary_", {}) or {}
    names = [""] * len(vocabulary)
    for term, j in vocabulary.items():
        names[j] = term
    return names


def _char_prefix(text: str) -> str:
    return text[:CHAR_PREFIX].lower()
