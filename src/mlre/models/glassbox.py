"""Glass-box families, searched when the spec asks for an interpretable model: a sparse linear
model, a shallow decision tree and an explainable boosting machine (the ``interpret`` package).

Each is a model a person can read whole: coefficients, a tree of a few levels, one shape
function per column. :func:`describe` turns a fitted one into that readable form.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from mlre.models.zoo import Family, Params, n_threads
from mlre.values import plain

#: The order of their proven starting points: cheapest first.
INTERPRETABLE_ORDER: list[tuple[str, int]] = [
    ("sparse_linear", 0),
    ("shallow_tree", 0),
    ("ebm", 0),
    ("shallow_tree", 1),
    ("sparse_linear", 1),
]


def _sparse_linear_build(task: str, p: Params, seed: int) -> Any:
    from sklearn.linear_model import Lasso, LogisticRegression

    if task == "regression":
        return Lasso(alpha=p.get("alpha", 0.01), max_iter=5000, random_state=seed)
    # an L1 penalty sets the weights of unhelpful columns to exactly zero
    return LogisticRegression(
        C=p.get("C", 0.1), l1_ratio=1.0, solver="saga", max_iter=2000, tol=1e-3, random_state=seed
    )


def _sparse_linear_space(trial, task: str) -> Params:
    if task == "regression":
        return {"alpha": trial.suggest_float("alpha", 1e-4, 10.0, log=True)}
    return {"C": trial.suggest_float("C", 1e-3, 10.0, log=True)}


def _tree_build(task: str, p: Params, seed: int) -> Any:
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    cls = DecisionTreeRegressor if task == "regression" else DecisionTreeClassifier
    return cls(
        max_depth=p.get("max_depth", 3),
        min_samples_leaf=p.get("min_samples_leaf", 20),
        random_state=seed,
    )


def _tree_space(trial, task: str) -> Params:
    return {
        "max_depth": trial.suggest_int("max_depth", 2, 4),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 200, log=True),
    }


def _ebm_build(task: str, p: Params, seed: int) -> Any:
    from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor

    cls = ExplainableBoostingRegressor if task == "regression" else ExplainableBoostingClassifier
    params = {
        "interactions": 0,
        "outer_bags": 4,  # the package's 14 bags cost 3.5x the time for little gain at our budgets
        "max_rounds": 2000,
        "n_jobs": n_threads(),
        "random_state": seed,
    }
    return cls(**(params | p))


def _ebm_fit(est, X, y, X_val, y_val, deadline):
    # the EBM keeps its own validation part for early stopping; the deadline stops its rounds
    est.set_params(callback=lambda *_: time.monotonic() > deadline)
    est.fit(X, y)
    est.set_params(callback=None)  # a closure would not pickle
    return est


def _ebm_space(trial, task: str) -> Params:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.005, 0.1, log=True),
        "interactions": trial.suggest_int("interactions", 0, 5),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 2, 20, log=True),
    }


GLASS_BOX: list[Family] = [
    Family(
        "sparse_linear",
        "dense",
        "sklearn",
        _sparse_linear_build,
        _sparse_linear_space,
        portfolio=[{"C": 0.1, "alpha": 0.01}, {"C": 1.0, "alpha": 0.1}],
        cost=0.5,
        interpretable=True,
    ),
    Family(
        "shallow_tree",
        "plain",
        "sklearn",
        _tree_build,
        _tree_space,
        portfolio=[
            {"max_depth": 3, "min_samples_leaf": 20},
            {"max_depth": 4, "min_samples_leaf": 50},
        ],
        cost=0.3,
        interpretable=True,
    ),
    Family(
        "ebm",
        "trees",
        "interpret",
        _ebm_build,
        _ebm_space,
        early_stopping=True,
        portfolio=[{"interactions": 0}],
        max_rows=300_000,
        cost=4.0,
        interpretable=True,
        # interpret runs its bags through joblib worker processes: one fit at a time, never
        # from several of the search's threads at once
        fold_parallel=False,
    ),
]
FITTERS = {"ebm": _ebm_fit}


# --------------------------------------------------------------------------- reading them


def describe(pipeline: Any, task: str, classes: list[str] | None) -> dict[str, Any] | None:
    """The whole fitted glass-box model in readable form, or None for another kind of model.

    sparse linear: the non-zero coefficients (per standard deviation of each input);
    shallow tree: its rules as text; EBM: each term's importance and shape function.
    """
    prep, est = pipeline.named_steps["prep"], pipeline.named_steps["model"]
    names = [str(n) for n in prep.get_feature_names_out()]
    kind = type(est).__name__
    if kind in ("LogisticRegression", "Lasso"):
        coef = np.atleast_2d(est.coef_)
        intercept = np.atleast_1d(est.intercept_)
        rows = []
        for k in range(coef.shape[0]):
            label = (
                None if task == "regression" else (classes[1] if coef.shape[0] == 1 else classes[k])
            )
            for name, w in zip(names, coef[k], strict=True):
                if w != 0:
                    rows.append({"feature": name, "coefficient": float(w), "class": label})
        rows.sort(key=lambda r: -abs(r["coefficient"]))
        return {
            "kind": "linear",
            "intercept": [float(v) for v in intercept],
            "coefficients": rows,
            "zeroed": int(coef.size - np.count_nonzero(coef)),
            "note": "numbers standardised: a coefficient is the change (in log-odds for "
            "classification) per standard deviation of the column; one-hot categories per level",
        }
    if kind.startswith("DecisionTree"):
        from sklearn.tree import export_text

        return {
            "kind": "tree",
            "depth": int(est.get_depth()),
            "leaves": int(est.get_n_leaves()),
            "text": export_text(
                est, feature_names=names, decimals=3, show_weights=task != "regression"
            ),
        }
    if kind.startswith("ExplainableBoosting"):
        explanation = est.explain_global()
        overall = explanation.data()
        terms = []
        for i, (name, importance) in enumerate(
            zip(overall["names"], overall["scores"], strict=True)
        ):
            shape = explanation.data(i)
            scores = np.asarray(shape.get("scores", []), dtype=float)
            terms.append(
                {
                    "term": str(name),
                    "importance": float(importance),
                    "names": [plain(v, other=str) for v in list(shape.get("names", []))][
                        : len(scores) + 1
                    ],
                    "scores": scores.tolist() if scores.ndim == 1 else None,
                }
            )
        terms.sort(key=lambda t: -t["importance"])
        return {"kind": "ebm", "terms": terms, "intercept": np.atleast_1d(est.intercept_).tolist()}
    return None
