"""Reading a fitted glass-box model whole: a sparse linear model's coefficients, a shallow
tree's rules, an explainable boosting machine's shape functions. The families themselves are in
:mod:`mlre.models.families.glassbox`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlre.spec import Task
from mlre.values import plain


def describe(pipeline: Any, task: Task, classes: list[str] | None) -> dict[str, Any] | None:
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
        rows: list[dict[str, Any]] = []
        for k in range(coef.shape[0]):
            label = None
            if task != "regression":
                if classes is None:
                    raise ValueError("a classifier's coefficients are labelled by its classes")
                label = classes[1] if coef.shape[0] == 1 else classes[k]
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
        terms: list[dict[str, Any]] = []
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
