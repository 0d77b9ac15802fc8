"""The model card: intended use, training data, metrics, evaluation, ethical considerations
and how to reproduce the model."""

from __future__ import annotations

from typing import Any


def model_card(summary: dict[str, Any], spec: Any, audit: Any) -> dict[str, Any]:
    """The model card: intended use, data, metrics, limitations, ethics and how to reproduce."""
    target = spec.target
    return {
        "model": f"{summary['project']} ({summary.get('model_uri') or 'not registered'})",
        "intended_use": f"predict {target!r} ({summary['task']}) for new rows drawn from the "
        "same population as the training data; not validated outside it",
        "training_data": {
            "source": audit.source,
            "sha256": audit.data_sha256,
            "rows": audit.n_rows,
            "columns": audit.n_cols,
        },
        "metrics": summary["holdout"],
        "evaluation": summary["scheme"].get("holdout"),
        "fitted_on": fitted_on(summary),
        "ethics": ethics(summary.get("fairness")),
        "reproduce": f"mlre run {audit.source} --target {target} --metric {summary['metric']} "
        f"--time-budget {summary['budget']:g} --seed {spec.seed}",
    }


def ethics(fairness: dict[str, Any] | None) -> str:
    """The model card's ethical considerations, from the fairness audit when there was one."""
    if not fairness:
        return (
            "no fairness audit was run for this model (no sensitive columns named): check group "
            "metrics with `mlre fairness` before using it for decisions about people"
        )
    breaches = [d for d in fairness["disparities"] if d["breached"]]
    columns = sorted({g["column"] for g in fairness["groups"] if " × " not in g["column"]})
    text = f"audited by {', '.join(columns)} on the holdout: "
    if breaches:
        text += "; ".join(
            f"{d['name'].replace('_', ' ')} by {d['column']} is {d['value']:.3f} (limit "
            f"{d['limit']:g})"
            for d in breaches[:4]
        )
        text += " — the model treats these groups differently; see the fairness section"
    else:
        text += "no disparity beyond its limit"
    if fairness.get("proxies"):
        p = fairness["proxies"][0]
        text += f"; {p['feature']} stands in for {p['sensitive']} (AUC {p['auc']:.2f})"
    return text


def fitted_on(summary: dict[str, Any]) -> str:
    """Which rows the registered model learnt from, and whose score the holdout's is."""
    refit = summary.get("refit")
    if not refit:
        return (
            "the training part only (the holdout rows stayed out): the holdout score is the "
            "registered model's own"
        )
    rows = "training and holdout rows" if refit.get("includes_holdout") else "training rows"
    return (
        f"all {refit['rows']:,} labelled {rows}: the chosen recipe refitted once the holdout "
        "had scored it, so the holdout score belongs to the recipe (the same members, "
        "configurations and weights, fitted on less data)"
    )
