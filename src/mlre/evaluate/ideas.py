"""Candidates for ``mlre compare``: a model family of the zoo, or an idea in a Python file.

An idea file is one of two kinds (the contract a user writes to; see the README):

* a **model idea** exposes ``make_estimator(task, seed)`` (or a module-level ``estimator``): a
  scikit-learn estimator. It is fitted on mlre's prepared features (``PREPROCESSING = "dense"``,
  the default: numbers standardised and categories one-hot; ``"trees"``: numbers as they are and
  categories as pandas categoricals; ``"plain"``: median-imputed numbers and one-hot categories;
  ``"raw"``: the raw feature columns) with the target encoded as 0..k-1 for classification.
  Classifiers need ``predict_proba``.
* a **feature idea** exposes ``transform(X) -> X`` (new columns computed from each row) or
  ``make_transformer()`` (a scikit-learn transformer, fitted on the training folds only). The
  baseline's model family runs on the transformed table, in the same folds; ``BASELINE =
  "lightgbm"`` names the family, otherwise the first family of the comparison is used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from mlre.data.contract import DataContract
from mlre.errors import InputError
from mlre.features.pipeline import FeaturePlan, make_preprocessor
from mlre.spec import Task

#: How a model idea's rows are prepared: a family's style, or "raw" (the table as it is).
Preprocessing = Literal["dense", "trees", "plain", "raw"]
PREPROCESSING: tuple[Preprocessing, ...] = get_args(Preprocessing)


class IdeaError(InputError):
    """An idea file that cannot take part: it does not import, exposes nothing usable, or its
    estimator fails or answers in the wrong shape."""


@dataclass
class FoldData:
    """One fold of the comparison: raw training and test rows, encoded targets."""

    X_train: pd.DataFrame
    y_train: np.ndarray
    X_test: pd.DataFrame
    task: Task
    n_classes: int
    plan: FeaturePlan
    contract: DataContract
    seed: int


Predict = Callable[[FoldData], np.ndarray]


@dataclass
class Candidate:
    """Something to compare: a name, where it comes from, and how it predicts a fold's test rows
    (probabilities for classification, values for regression)."""

    name: str
    source: str
    predict: Predict
    kind: str  # "family", "model idea" or "feature idea"
    # the same predictions from a process that has not loaded the idea (a Ray worker): a
    # picklable callable, or None when ``predict`` itself travels (a family) or cannot run
    portable: Predict | None = None

    def remote(self) -> Predict:
        """What a worker process calls for a fold's predictions."""
        return self.portable or self.predict


@dataclass
class IdeaCode:
    """An idea file carried by its text: loaded, once per process, where it runs."""

    path: str
    text: str
    baseline: str | None

    def __call__(self, fold: FoldData) -> np.ndarray:
        cand = self.load()
        try:
            return cand.predict(fold)
        except IdeaError as err:
            raise IdeaError(
                err.message.replace(str(self._copy()), self.path), hint=err.hint
            ) from None

    def load(self) -> Candidate:
        """The candidate, from a copy of the file written beside this process (once)."""
        copy = self._copy()
        cand = _REMOTE.get(str(copy))
        if cand is None:
            copy.parent.mkdir(exist_ok=True)
            if not copy.is_file() or copy.read_text() != self.text:
                # written whole, then put in place: the workers of one machine share the folder,
                # and a worker that read the file while another rewrote it in place would import
                # a part of it (an empty module: "exposes no estimator and no transformer")
                fd, partial = tempfile.mkstemp(dir=copy.parent, suffix=".partial")
                with os.fdopen(fd, "w") as out:
                    out.write(self.text)
                os.replace(partial, copy)
            try:
                cand = _REMOTE[str(copy)] = load_idea(copy, self.baseline)
            except IdeaError as err:
                raise IdeaError(err.message.replace(str(copy), self.path), hint=err.hint) from None
        return cand

    def _copy(self) -> Path:
        """Where this process loads the file from: the same name, so that messages name the
        user's file, in a folder of its own named after the text."""
        key = hashlib.sha256(self.text.encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"mlre-idea-{key}" / Path(self.path).name


_REMOTE: dict[str, Candidate] = {}


def default_params(name: str) -> dict[str, Any]:
    """The first portfolio configuration of zoo family ``name``; InputError for a name that is
    no family, or one whose library is not installed."""
    from mlre.models.families import FAMILIES, available_families

    if name not in FAMILIES:
        from mlre.errors import did_you_mean

        hint = did_you_mean(name, FAMILIES) or "families: " + ", ".join(FAMILIES)
        raise InputError(f"{name!r} is neither a model family nor an idea file", hint=hint)
    family = FAMILIES[name]
    if family not in available_families([name]):
        raise InputError(f"the {name} family needs {family.requires}, which is not installed")
    return dict(family.portfolio[0]) if family.portfolio else {}


def family_candidate(name: str) -> Candidate:
    """A zoo family with its first portfolio configuration."""
    params = default_params(name)
    return Candidate(name, name, lambda fold: family_predictions(name, params, fold), "family")


def family_predictions(
    name: str, params: dict[str, Any], fold: FoldData, transform: Any | None = None
) -> np.ndarray:
    """Zoo family ``name`` fitted on a fold's training rows (its tables and plan through
    ``transform(fold)`` when given): its predictions for the fold's test rows."""
    from mlre.models.final import member_predict
    from mlre.search.trial import fit_family_stopped

    X_train, X_test, plan = fold.X_train, fold.X_test, fold.plan
    if transform is not None:
        X_train, X_test, plan = transform(fold)
    pipe = fit_family_stopped(name, params, plan, fold.task, X_train, fold.y_train, fold.seed)
    return member_predict(pipe, X_test, fold.task, fold.n_classes)


def failed_candidate(path: str | Path, error: IdeaError) -> Candidate:
    """An idea that cannot run: it takes its place in the results with the reason."""

    def predict(fold: FoldData) -> np.ndarray:
        raise error

    return Candidate(Path(path).stem, str(path), predict, "idea")


def load_idea(path: str | Path, baseline_family: str | None) -> Candidate:
    """The candidate an idea file describes; IdeaError naming the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise IdeaError(f"idea file {path} does not exist")
    module = _import(path)
    name = path.stem
    portable = IdeaCode(str(path), path.read_text(), baseline_family)
    if hasattr(module, "make_estimator") or hasattr(module, "estimator"):
        asked = getattr(module, "PREPROCESSING", "dense")
        style = next((p for p in PREPROCESSING if p == asked), None)
        if style is None:
            raise IdeaError(
                f"{path}: PREPROCESSING is {asked!r}; use one of {', '.join(PREPROCESSING)}"
            )
        return Candidate(
            name,
            str(path),
            lambda fold: _fit_estimator(path, module, style, fold),
            "model idea",
            portable,
        )
    if hasattr(module, "transform") or hasattr(module, "make_transformer"):
        family = getattr(module, "BASELINE", None) or baseline_family
        if family is None:
            raise IdeaError(
                f"{path} is a feature idea but there is no model to run it with",
                hint="set BASELINE = 'lightgbm' in the file, or name a family before it",
            )
        params = default_params(family)
        return Candidate(
            f"{family}+{name}",
            str(path),
            lambda fold: family_predictions(
                family, params, fold, lambda f: _apply_transform(path, module, f)
            ),
            "feature idea",
            portable,
        )
    raise IdeaError(
        f"{path} exposes no estimator and no transformer",
        hint="define make_estimator(task, seed) or estimator (a model idea), or transform(X) "
        "or make_transformer() (a feature idea)",
    )


def _import(path: Path) -> Any:
    module_name = f"mlre_idea_{path.stem}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise IdeaError(f"{path} is not a Python file mlre can import")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(module_name, None)
        raise IdeaError(f"{path} does not import: {_reason(err, path)}") from None
    return module


def _reason(err: BaseException, path: Path) -> str:
    """The error and the line of the idea file that raised it, without mlre's own frames."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if Path(f.filename) == path]
    where = f" (line {frames[-1].lineno})" if frames else ""
    return f"{type(err).__name__}: {err}{where}"


def _fit_estimator(path: Path, module: Any, style: Preprocessing, fold: FoldData) -> np.ndarray:
    from sklearn.base import clone

    try:
        if hasattr(module, "make_estimator"):
            est = module.make_estimator(fold.task, fold.seed)
        else:
            est = clone(module.estimator)
    except Exception as err:
        raise IdeaError(f"{path}: building the estimator failed: {_reason(err, path)}") from None
    if not hasattr(est, "fit") or not hasattr(est, "predict"):
        raise IdeaError(f"{path}: {type(est).__name__} is not an estimator (no fit/predict)")
    classification = fold.task != "regression"
    if classification and not hasattr(est, "predict_proba"):
        raise IdeaError(
            f"{path}: {type(est).__name__} has no predict_proba; a classifier must give "
            "probabilities to be scored"
        )
    if style == "raw":
        X_train, X_test = fold.X_train[fold.plan.columns], fold.X_test[fold.plan.columns]
    else:
        prep = make_preprocessor(fold.plan, style)
        X_train = prep.fit_transform(fold.X_train)
        X_test = prep.transform(fold.X_test)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X_train, fold.y_train)
    except Exception as err:
        raise IdeaError(f"{path}: fit raised {_reason(err, path)}") from None
    try:
        out = est.predict_proba(X_test) if classification else est.predict(X_test)
    except Exception as err:
        raise IdeaError(f"{path}: prediction raised {_reason(err, path)}") from None
    out = np.asarray(out, dtype=float)
    n = len(fold.X_test)
    if classification:
        from mlre.models.final import align_proba

        seen = np.asarray(getattr(est, "classes_", np.arange(fold.n_classes)))
        if out.ndim != 2 or out.shape[0] != n or out.shape[1] != len(seen):
            raise IdeaError(
                f"{path}: predict_proba gave shape {out.shape}; expected ({n}, {len(seen)}), "
                "one row per test row and one column per class"
            )
        return align_proba(out, seen, fold.n_classes)
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.shape != (n,):
        raise IdeaError(
            f"{path}: predict gave shape {out.shape}; expected ({n},), one value per row"
        )
    return out


def _apply_transform(
    path: Path, module: Any, fold: FoldData
) -> tuple[pd.DataFrame, pd.DataFrame, FeaturePlan]:
    """The fold's tables through the idea's transformer (fitted on training rows only) and the
    feature plan extended with the columns it added."""
    try:
        if hasattr(module, "make_transformer"):
            transformer = module.make_transformer()
            X_train = transformer.fit(fold.X_train, fold.y_train).transform(fold.X_train)
            X_test = transformer.transform(fold.X_test)
        else:
            X_train, X_test = module.transform(fold.X_train), module.transform(fold.X_test)
    except Exception as err:
        raise IdeaError(f"{path}: the transformer raised {_reason(err, path)}") from None
    for label, table, source in (
        ("training", X_train, fold.X_train),
        ("test", X_test, fold.X_test),
    ):
        if not isinstance(table, pd.DataFrame) or len(table) != len(source):
            got = (
                type(table).__name__
                if not isinstance(table, pd.DataFrame)
                else f"{len(table)} rows"
            )
            raise IdeaError(
                f"{path}: the transformer must return a table with one row per input row; "
                f"for the {label} rows it returned {got} (expected {len(source)} rows)"
            )
    X_train = X_train.set_axis(fold.X_train.index)
    X_test = X_test.set_axis(fold.X_test.index)
    plan = plan_for_columns(fold.plan, X_train)
    return X_train, X_test, plan


def plan_for_columns(plan: FeaturePlan, X: pd.DataFrame) -> FeaturePlan:
    """``plan`` for the columns of ``X``: its columns that ``X`` lacks leave it, and each new
    column joins by its type (numbers and flags numeric, dates, the rest categorical)."""
    known = set(plan.columns) | set(plan.ignored)
    out = FeaturePlan(
        numeric=[c for c in plan.numeric if c in X.columns],
        boolean=[c for c in plan.boolean if c in X.columns],
        datetime=[c for c in plan.datetime if c in X.columns],
        categorical=[c for c in plan.categorical if c in X.columns],
        ignored=dict(plan.ignored),
    )
    for c in X.columns:
        if c in known:
            continue
        if pd.api.types.is_bool_dtype(X[c].dtype) or pd.api.types.is_numeric_dtype(X[c].dtype):
            out.numeric.append(str(c))
        elif pd.api.types.is_datetime64_any_dtype(X[c].dtype):
            out.datetime.append(str(c))
        else:
            out.categorical.append(str(c))
    return out
