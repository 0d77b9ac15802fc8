"""Mitigation for binary classifiers: what each way of narrowing a disparity costs in accuracy.

Two families from Fairlearn, both evaluated on the same held-out rows as the unmitigated model:

* post-processing (``ThresholdOptimizer``): the run's model unchanged, a threshold per group
  chosen so that the constraint holds; the thresholds are fitted on one half of the holdout and
  every option is scored on the other half, so no option is judged on rows it was tuned on;
* in-training reductions (``ExponentiatedGradient``): a randomised mixture of models of the
  run's best family, each refitted with weights that push toward the constraint, at several
  bounds on the disparity (a trade-off curve).

Both need the sensitive column at prediction time, which a model that uses them must say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from mlre.errors import InputError
from mlre.features.pipeline import FeaturePlan, make_preprocessor
from mlre.spec import Task

CONSTRAINTS = {
    "demographic_parity": "demographic_parity",
    "equalized_odds": "equalized_odds",
}

#: Disparity bounds of the in-training reductions, loosest last.
EPSILONS = (0.01, 0.02, 0.05)


@dataclass
class Option:
    """One model on the trade-off: its accuracy and disparities on the evaluation rows."""

    name: str
    kind: str  # "unmitigated", "post-processing" or "reduction"
    accuracy: float
    balanced_accuracy: float
    demographic_parity_difference: float
    equalized_odds_difference: float
    selection_rate: float
    needs_sensitive: bool
    model: Any = field(default=None, repr=False)

    def row(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "model"}


class FamilyClassifier(ClassifierMixin, BaseEstimator):
    """A zoo family with its preprocessing, fitted with sample weights (what the reductions
    need from their base model)."""

    def __init__(
        self,
        plan: FeaturePlan | None = None,
        family: str = "lightgbm",
        params: dict[str, Any] | None = None,
        seed: int = 0,
    ):
        self.plan = plan
        self.family = family
        self.params = params
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: np.ndarray, sample_weight: np.ndarray | None = None):
        from mlre.models.families import FAMILIES

        if self.plan is None:
            raise ValueError("FamilyClassifier needs the feature plan of the table it fits")
        fam = FAMILIES[self.family]
        params = dict(self.params or {})
        if fam.early_stopping:  # no validation rows here: a fixed, moderate number of rounds
            params.setdefault("n_estimators", 200)
            params.pop("early_stopping_rounds", None)
        self.prep_ = make_preprocessor(self.plan, fam.style)
        Xt = self.prep_.fit_transform(X)
        self.model_ = fam.build("binary", params, self.seed)
        if self.family == "xgboost":
            self.model_.set_params(early_stopping_rounds=None)
        self.model_.fit(Xt, y, sample_weight=sample_weight)
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.model_.predict_proba(self.prep_.transform(X))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class _Prefit(ClassifierMixin, BaseEstimator):
    """The run's model as a fitted scikit-learn classifier over 0/1 labels."""

    def __init__(self, model: Any = None):
        self.model = model

    def fit(self, X: Any, y: Any) -> _Prefit:
        return self

    @property
    def classes_(self) -> np.ndarray:
        return np.array([0, 1])

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(X)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)


def _score(name: str, kind: str, y: np.ndarray, pred: np.ndarray, groups: np.ndarray, model: Any,
           needs: bool) -> Option:  # fmt: skip
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
    from sklearn.metrics import balanced_accuracy_score

    pred = np.asarray(pred, dtype=int)
    return Option(
        name,
        kind,
        float((pred == y).mean()),
        float(balanced_accuracy_score(y, pred)),
        float(demographic_parity_difference(y, pred, sensitive_features=groups)),
        float(equalized_odds_difference(y, pred, sensitive_features=groups)),
        float(pred.mean()),
        needs,
        model,
    )


def tradeoff(
    model: Any,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    groups_train: np.ndarray,
    X_hold: pd.DataFrame,
    y_hold: np.ndarray,
    groups_hold: np.ndarray,
    *,
    constraint: str,
    plan: FeaturePlan,
    family: str,
    params: dict[str, Any],
    seed: int = 0,
    epsilons: tuple[float, ...] = EPSILONS,
    reductions: bool = True,
) -> list[Option]:
    """The unmitigated model and each mitigation, scored on the same evaluation rows (half of the
    holdout; the other half tunes the post-processing thresholds)."""
    if constraint not in CONSTRAINTS:
        raise InputError(
            f"unknown constraint {constraint!r}", hint="use demographic_parity or equalized_odds"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y_hold))
    tune, test = np.sort(order[: len(order) // 2]), np.sort(order[len(order) // 2 :])
    X_test, y_test, g_test = X_hold.iloc[test], y_hold[test], groups_hold[test]
    options = [
        _score(
            "unmitigated",
            "unmitigated",
            y_test,
            model.predict_proba(X_test).argmax(axis=1),
            g_test,
            model,
            False,
        )
    ]
    post = _thresholds_per_group(
        model, X_hold.iloc[tune], y_hold[tune], groups_hold[tune], constraint
    )
    options.append(
        _score(
            f"thresholds per group ({constraint.replace('_', ' ')})",
            "post-processing",
            y_test,
            post.predict(X_test, sensitive_features=g_test, random_state=seed),
            g_test,
            post,
            True,
        )
    )
    if reductions:
        for eps in epsilons:
            mitigator = _reweighted(
                X_train, y_train, groups_train, constraint, eps, plan, family, params, seed
            )
            options.append(
                _score(
                    f"{family} reweighted (bound {eps:g})",
                    "reduction",
                    y_test,
                    mitigator.predict(X_test, random_state=seed),
                    g_test,
                    mitigator,
                    False,
                )
            )
    return options


def _thresholds_per_group(
    model: Any, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, constraint: str
) -> Any:
    """Fairlearn's post-processing of the fitted ``model``: a threshold per group, fitted on
    the rows given, under which ``constraint`` holds."""
    from fairlearn.postprocessing import ThresholdOptimizer

    post = ThresholdOptimizer(
        estimator=_Prefit(model),
        constraints=CONSTRAINTS[constraint],
        objective="accuracy_score",
        prefit=True,
        predict_method="predict_proba",
    )
    post.fit(X, y, sensitive_features=groups)
    return post


def _reweighted(
    X: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    constraint: str,
    bound: float,
    plan: FeaturePlan,
    family: str,
    params: dict[str, Any],
    seed: int,
) -> Any:
    """Fairlearn's in-training reduction: a mixture of models of ``family`` refitted with
    weights that keep the disparity of ``constraint`` within ``bound``."""
    from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient

    moment = DemographicParity if constraint == "demographic_parity" else EqualizedOdds
    mitigator = ExponentiatedGradient(
        FamilyClassifier(plan, family, params, seed),
        constraints=moment(difference_bound=bound),
        max_iter=20,
    )
    mitigator.fit(X, y, sensitive_features=groups)
    return mitigator


class MitigatedModel(BaseEstimator):
    """A mitigated binary classifier that registers and serves like any mlre model.

    Both of Fairlearn's mitigations are randomised rules: each row gets the positive label with
    a probability (between two thresholds of its group, or across a mixture of models). Taking
    the more probable label would not be the audited rule (it changes the selection rates). Here
    each row draws once, from a number hashed from its own values: the same row always gets the
    same answer, and over many rows the rates are the mitigation's. ``predict_proba`` gives that
    decision (0 or 1 per class, so that a service answers what ``predict`` answers);
    ``decision_probability`` gives the rule's probability of the positive label."""

    def __init__(
        self,
        mitigator: Any = None,
        kind: str = "reduction",
        sensitive: str = "",
        classes: np.ndarray | None = None,
        contract: Any = None,
        metric: str = "accuracy",
    ):
        self.mitigator = mitigator
        self.kind = kind
        self.sensitive = sensitive
        self.classes = classes
        self.contract = contract
        self.metric = metric

    task: Task = "binary"

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.classes, dtype=object)

    def fit(self, X: Any = None, y: Any = None) -> MitigatedModel:
        """Fitted by ``mlre mitigate``."""
        return self

    def decision_probability(self, X: pd.DataFrame) -> np.ndarray:
        """The rule's probability of the positive label for each row."""
        if self.kind == "post-processing":
            values = X[self.sensitive]
            groups = values.astype(object).where(values.notna(), "missing").astype(str)
            # the probabilities the public, randomised predict draws from
            pmf = self.mitigator._pmf_predict(X, sensitive_features=groups.to_numpy())
        else:
            pmf = self.mitigator._pmf_predict(X)
        return np.asarray(pmf, dtype=float)[:, 1]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """The decision for each row as one column per class (1 for the chosen class)."""
        features = [c.name for c in self.contract.features if c.name in X.columns]
        hashed = pd.util.hash_pandas_object(X[features], index=False).to_numpy()
        draw = hashed.astype(np.float64) / 2.0**64
        positive = draw < self.decision_probability(X)
        return np.column_stack([~positive, positive]).astype(float)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The label of each row."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def describe(self) -> list[dict[str, Any]]:
        return [{"family": f"mitigated ({self.kind})", "params": {}, "weight": 1.0}]


def pareto(options: list[Option]) -> list[str]:
    """Names of the options no other beats on both accuracy and demographic parity."""
    front = []
    for o in options:
        dominated = any(
            p.accuracy >= o.accuracy
            and p.demographic_parity_difference <= o.demographic_parity_difference
            and (
                p.accuracy > o.accuracy
                or p.demographic_parity_difference < o.demographic_parity_difference
            )
            for p in options
        )
        if not dominated:
            front.append(o.name)
    return front


def tradeoff_figure(options: list[Option], constraint: str) -> dict[str, Any]:
    """Accuracy against the disparity of each option (Plotly figure dict)."""
    from mlre.report.figures import PALETTE

    key = (
        "demographic_parity_difference"
        if constraint == "demographic_parity"
        else "equalized_odds_difference"
    )
    kinds = list(dict.fromkeys(o.kind for o in options))
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": kind,
                "x": [getattr(o, key) for o in options if o.kind == kind],
                "y": [o.accuracy for o in options if o.kind == kind],
                "text": [o.name for o in options if o.kind == kind],
                "textposition": "top center",
                "marker": {"size": 11, "color": PALETTE[i % len(PALETTE)]},
            }
            for i, kind in enumerate(kinds)
        ],
        "layout": {
            "title": {"text": "Accuracy against disparity on the evaluation rows"},
            "xaxis": {"title": {"text": key.replace("_", " ")}},
            "yaxis": {"title": {"text": "accuracy"}},
            "template": "plotly_white",
            "height": 380,
        },
    }


def tradeoff_html(options: list[Option], front: list[str], constraint: str, sensitive: str) -> str:
    """A self-contained page (Plotly embedded, no network) with the trade-off table and plot."""
    from mlre.report.page import figure_page

    return figure_page(
        f"Mitigation for {constraint.replace('_', ' ')} by {sensitive}",
        "Every option scored on the same held-out rows (half of the run's holdout; the other "
        "half tuned the thresholds).",
        ["option", "accuracy", "balanced accuracy", "DP difference", "EO difference", "Pareto",
         f"needs {sensitive}"],
        [
            [o.name, f"{o.accuracy:.4f}", f"{o.balanced_accuracy:.4f}",
             f"{o.demographic_parity_difference:.3f}", f"{o.equalized_odds_difference:.3f}",
             "yes" if o.name in front else "", "yes" if o.needs_sensitive else ""]
            for o in options
        ],
        [tradeoff_figure(options, constraint)],
    )  # fmt: skip
