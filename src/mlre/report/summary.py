"""The report's first section in plain words: what the model does, how well (in words a
non-specialist can act on), the main risks and what to do next."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlre.findings import Severity


def describe_score(
    metric: str, value: float, baseline: float | None, classes: list[str] | None = None
) -> str:
    """A metric's value in words a non-specialist can act on."""
    base = f" (a naive baseline: {baseline:.4g})" if baseline is not None else ""
    if metric == "roc_auc":
        if classes and len(classes) == 2:
            pair = (
                f"a randomly chosen {classes[1]!r} row above a randomly chosen {classes[0]!r} row"
            )
        else:
            pair = "a randomly chosen row of a class above a row of another class (on average)"
        return (
            f"it ranks {pair} {100 * value:.1f}% of the time (ROC AUC {value:.3f}; guessing "
            "gives 50%)"
        )
    if metric == "accuracy":
        return f"it is right for {100 * value:.1f}% of the rows{base}"
    if metric == "balanced_accuracy":
        return f"it is right for {100 * value:.1f}% of each class's rows on average{base}"
    if metric == "f1":
        return f"its F1 score is {value:.3f}{base}"
    if metric == "log_loss":
        return f"its log loss is {value:.4f}, lower being better{base}"
    if metric == "rmse":
        return f"its predictions are typically off by {value:.4g} (root mean squared error){base}"
    if metric == "mae":
        return f"its predictions are off by {value:.4g} on average (mean absolute error){base}"
    if metric == "r2":
        return f"it explains {100 * value:.1f}% of the variation in the target (R²)"
    if metric == "mape":
        return f"its predictions are off by {100 * value:.1f}% on average (MAPE){base}"
    return f"{metric} {value:.4g}{base}"


def executive_summary(data: dict[str, Any]) -> dict[str, Any]:
    """The report's first section in plain words: what, how well, risks, what next."""
    perf = data["performance"]
    metric = data["metric"]
    score = perf["holdout_score"]
    baseline = perf["baseline"].get(metric)
    interval = next(
        (
            r
            for d in data["diagnostics"]
            if d["name"] == "intervals"
            for r in d["data"]["rows"]
            if r["metric"] == metric
        ),
        None,
    )
    what = (
        f"The model predicts {data['target']!r}"
        + (f" (one of {', '.join(data['classes'][:6])})" if data["classes"] else "")
        + f" from {len(data['selection']['features'])} columns."
    )
    how = (
        f"On {perf['holdout_rows']:,} rows it never saw during training, "
        + describe_score(metric, score, baseline, data["classes"])
        + "."
    )
    if interval and np.isfinite(interval["low"]):
        how += f" With 95% confidence the true {metric} lies between {interval['low']:.4g} and {interval['high']:.4g}."
    better = (score > baseline) == data["greater_is_better"] if baseline is not None else True
    if baseline is not None:
        how += (
            f" That is better than the naive baseline ({baseline:.4g})."
            if better
            else f" That is no better than the naive baseline ({baseline:.4g})."
        )
    serious = [
        f
        for f in data["findings"]
        if f["severity"] in (Severity.ERROR.value, Severity.WARNING.value)
    ]
    risks = [f["message"] for f in serious[:5]]
    steps = []
    for f in serious:
        if f.get("fix") and f["fix"] not in steps:
            steps.append(f["fix"])
    if not steps:
        steps.append(
            "deploy as a shadow first and compare its live predictions with outcomes before "
            "letting it decide anything"
        )
    return {"what": what, "how_well": how, "risks": risks, "next": steps[:4], "better": better}
