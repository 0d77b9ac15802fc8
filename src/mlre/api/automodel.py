"""The whole search as scikit-learn estimators: ``AutoModel``, ``AutoClassifier``, ``AutoRegressor``.

They follow scikit-learn's estimator contract (parameters stored as given and validated at
``fit``, ``NotFittedError`` before it, the feature count and names checked at prediction, tags
that say what input they take), so they work in pipelines, ``cross_val_score`` and ``clone``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from mlre.api.run import RunResult, run
from mlre.spec import Spec, Task, build_spec, load_spec


class SearchEstimator(BaseEstimator):
    """What the three estimators share: ``fit`` runs ``mlre.run`` on ``X`` and ``y`` (untracked
    unless ``track=True``), prediction checks its input against what ``fit`` saw."""

    def __init__(
        self,
        time_budget: float = 60,
        metric: str | None = None,
        seed: int = 0,
        holdout: float = 0.2,
        families: list[str] | None = None,
        force: bool = False,
        track: bool = False,
        refit: bool = True,
        time_column: str | None = None,
        gap: int | None = None,
        group_column: str | None = None,
        id_columns: list[str] | None = None,
        sensitive: list[str] | None = None,
        constraints: dict[str, Any] | None = None,
        spec: Spec | dict[str, Any] | str | Path | None = None,
    ) -> None:
        self.time_budget = time_budget
        self.metric = metric
        self.seed = seed
        self.holdout = holdout
        self.refit = refit
        self.families = families
        self.force = force
        self.track = track
        self.time_column = time_column
        self.gap = gap
        self.group_column = group_column
        self.id_columns = id_columns
        self.sensitive = sensitive
        self.constraints = constraints
        self.spec = spec

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values are imputed or handled by the trees
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        # the search stops at a clock, not a trial count: two fits of the same data and seed
        # agree when both finish their search, and may not when one of them is cut earlier
        tags.non_deterministic = True
        return tags

    def _task(self, y: np.ndarray) -> Task | None:
        """The task to search for ``y``: None lets mlre detect it from ``y``."""
        return None

    def fit(self, X: Any, y: Any) -> SearchEstimator:
        """Search for the best model of ``y`` given ``X``."""
        frame = self._frame(X, reset=True)
        target = column_or_1d(y, warn=True)
        if len(frame) < 2:
            raise ValueError(f"X has {len(frame)} sample; at least 2 samples are needed")
        if not pd.notna(target).any():
            raise ValueError("Input y contains NaN only: every label is missing")
        if len(target) != len(frame):
            raise ValueError(
                f"X has {len(frame)} rows but y has {len(target)}; they must describe the same rows"
            )
        task = self._task(target)
        name = str(getattr(y, "name", None) or "target")
        while name in frame.columns:
            name = f"_{name}"
        frame[name] = target
        self.result_: RunResult = run(
            frame,
            spec=self._spec(),
            target=name,
            time_budget=self.time_budget,
            metric=self.metric,
            task=task,
            seed=self.seed,
            holdout=self.holdout,
            refit=self.refit,
            families=self.families,
            force=self.force,
            track=self.track,
            report=False,
            **self._settings(),
        )
        self.model_ = self.result_.model
        if self.model_.task != "regression":
            self._learn_classes(target)
        return self

    def _spec(self) -> Spec:
        """The whole spec the run starts from: ``spec`` as given (a Spec, a dict of its keys or
        the path of an mlre.yaml), or the defaults; never a spec file found by chance in the
        working directory. The estimator's own parameters are applied on top."""
        if self.spec is None:
            return Spec()
        if isinstance(self.spec, Spec):
            return self.spec
        if isinstance(self.spec, dict):
            return build_spec(dict(self.spec), "the spec given to the estimator")
        return load_spec(self.spec)

    def _settings(self) -> dict[str, Any]:
        """The estimator's parameters that shape a run, where set (the spec's otherwise)."""
        values: dict[str, Any] = {
            "time_column": self.time_column,
            "gap": self.gap,
            "group_column": self.group_column,
            "id_columns": None if self.id_columns is None else list(self.id_columns),
            "sensitive": None if self.sensitive is None else list(self.sensitive),
        }
        if self.constraints is not None:
            base = self._spec().constraints.model_dump(exclude_unset=True)
            values["constraints"] = {**base, **dict(self.constraints)}
        return {k: v for k, v in values.items() if v is not None}

    def _learn_classes(self, target: np.ndarray) -> None:
        """``classes_`` as scikit-learn has them (the sorted labels of ``y``, its dtype), and
        where each of the model's classes sits among them."""
        self.classes_ = np.unique(target[pd.notna(target)])
        model_classes = np.asarray(self.model_.classes_, dtype=object)
        order = pd.Index(self.classes_).get_indexer(model_classes)
        if (order < 0).any():  # the model may hold labels as text
            order = pd.Index(self.classes_.astype(str)).get_indexer(model_classes.astype(str))
        self.class_order_ = order

    def _frame(self, X: Any, reset: bool) -> pd.DataFrame:
        """``X`` as the table the model sees, its width and names checked against ``fit``'s."""
        if not reset:
            check_is_fitted(self, "model_")
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            if X.shape[0] == 0:
                raise ValueError("X has no rows: at least one row is needed")
            frame = X.copy()
            frame.columns = [str(c) for c in frame.columns]
            return frame
        array = validate_data(
            self,
            X,
            reset=reset,
            dtype=None,
            ensure_all_finite="allow-nan",
            ensure_min_samples=1,
        )
        if np.iscomplexobj(array):
            raise ValueError("complex data is not supported: pass real numbers")
        return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])

    def predict(self, X: Any) -> np.ndarray:
        """Labels (classification) or values (regression)."""
        frame = self._frame(X, reset=False)
        if self.model_.task == "regression":
            return np.asarray(self.model_.predict(frame), dtype=float)
        return self.classes_[np.argmax(self._proba(frame), axis=1)]

    def _proba(self, frame: pd.DataFrame) -> np.ndarray:
        proba = np.asarray(self.model_.predict_proba(frame), dtype=float)
        out = np.zeros((len(proba), len(self.classes_)))
        out[:, self.class_order_] = proba
        return out


def _classifies(estimator: Any) -> bool:
    """Whether a fitted ``AutoModel`` classifies (so that it offers ``predict_proba``)."""
    model = getattr(estimator, "model_", None)
    return model is None or model.task != "regression"


class AutoModel(SearchEstimator):
    """Find the best honest model for ``X, y`` within ``time_budget`` seconds.

    ``fit`` audits the data, holds out ``holdout`` of the rows for an honest score
    (``result_.holdout``), searches, ensembles, and keeps the final model: with ``refit`` (the
    default) the chosen recipe refitted on every row once the holdout has scored it, so no row
    is given up for the score (``result_.scored_model`` is the one scored). Nothing is written to
    disk unless ``track=True``. The task is detected from ``y`` unless ``task`` is given;
    ``AutoClassifier`` and ``AutoRegressor`` fix it and add ``score``.

    Every setting of ``mlre.yaml`` that shapes a run can be given: ``time_column`` (a column of
    ``X`` dating each row: every split goes forward in time) with ``gap``, ``group_column``,
    ``id_columns``, ``sensitive``, ``constraints`` (e.g. ``{"max_latency_ms": 1}``), or a whole
    ``spec`` (a ``Spec``, a dict of its keys, or the path of an mlre.yaml). The estimator's own
    parameters are applied on top of ``spec``.
    """

    def __init__(
        self,
        time_budget: float = 60,
        metric: str | None = None,
        task: Task | None = None,
        seed: int = 0,
        holdout: float = 0.2,
        families: list[str] | None = None,
        force: bool = False,
        track: bool = False,
        refit: bool = True,
        time_column: str | None = None,
        gap: int | None = None,
        group_column: str | None = None,
        id_columns: list[str] | None = None,
        sensitive: list[str] | None = None,
        constraints: dict[str, Any] | None = None,
        spec: Spec | dict[str, Any] | str | Path | None = None,
    ) -> None:
        super().__init__(
            time_budget, metric, seed, holdout, families, force, track, refit, time_column, gap,
            group_column, id_columns, sensitive, constraints, spec,
        )  # fmt: skip
        self.task = task

    def _task(self, y: np.ndarray) -> Task | None:
        return self.task

    @available_if(_classifies)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities in the order of ``classes_`` (a fitted classification model)."""
        return self._proba(self._frame(X, reset=False))


class AutoClassifier(ClassifierMixin, SearchEstimator):
    """``AutoModel`` for classification: binary or multiclass, by the number of classes in ``y``;
    ``score`` is accuracy, ``predict_proba`` gives calibrated class probabilities."""

    def _task(self, y: np.ndarray) -> Task:
        check_classification_targets(y)
        n_classes = len(pd.unique(pd.Series(y).dropna()))
        if n_classes < 2:
            raise ValueError(
                f"y has {n_classes} class; a classifier needs at least two different labels"
            )
        return "binary" if n_classes == 2 else "multiclass"

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities in the order of ``classes_``."""
        return self._proba(self._frame(X, reset=False))


class AutoRegressor(RegressorMixin, SearchEstimator):
    """``AutoModel`` for regression; ``score`` is R²."""

    def _task(self, y: np.ndarray) -> Task:
        return "regression"

    def fit(self, X: Any, y: Any) -> AutoRegressor:
        """Search for the best model of the numbers ``y`` given ``X``."""
        values = column_or_1d(y, warn=True)
        try:
            numbers = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(
                "Unknown label type: y must be numbers for a regressor; use AutoClassifier "
                "for labels"
            ) from None
        if np.isinf(numbers).any():
            raise ValueError("y contains infinity; a regression target must be finite numbers")
        super().fit(X, numbers)
        return self
