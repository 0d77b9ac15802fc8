"""What ``mlre run`` records in MLflow: every trial as a child run as it finishes, and at the end
the run's parameters, scores, leaderboard, spec and recipe, with the model registered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

Progress = Callable[[str], None]
#: Where a run keeps the model its holdout scored, when the model it registered is a refit.
SCORED_MODEL = "scored_model"


def trial_logger(parent: Any | None, metric: str, step: Progress) -> Callable[[Any], None]:
    """A callback for each finished trial: says it through ``step`` and, under a ``parent``
    run, logs it as a child run with its parameters, scores and fold scores."""
    from mlre.evaluate.metrics import get_metric
    from mlre.track.store import experiment_of, log_child_run

    m = get_metric(metric)
    experiment = experiment_of(parent) if parent is not None else None

    def on_trial(t) -> None:
        score = m.to_score(t.loss) if t.status == "ok" else None
        step(
            f"trial {t.id}: {t.family} "
            + (f"{metric}={score:.4f}" if score is not None else t.status)
        )
        if parent is None or experiment is None:
            return
        log_child_run(
            parent,
            experiment,
            f"{t.id:03d}-{t.family}",
            params=t.params,
            metrics={
                f"cv_{metric}": score,
                "fit_seconds": t.fit_seconds,
                "predict_seconds": t.predict_seconds,
            },
            tags={
                "mlre.kind": "trial",
                "mlre.family": t.family,
                "mlre.phase": t.phase,
                "mlre.status": t.status,
                "mlre.error": t.error,
            },
            steps={f"fold_{metric}": [m.to_score(v) for v in t.fold_losses]},
            status="FINISHED" if t.status in ("ok", "pruned", "cut") else "FAILED",
        )

    return on_trial


def record_run(parent: Any, result: Any, report: Any, inputs: Any) -> None:
    """Log a finished run's ``result`` (a ``RunResult``) to its ``parent`` MLflow run, register
    its model and note where the model lives on ``result``; ``report`` is the run's audit."""
    from mlre.track.registry import log_and_register, log_hashed_file

    _log_run(parent, result, report, inputs)
    features = result.scheme["features"]
    registered = log_and_register(
        parent.run_id,
        result.model,
        inputs.df[features],
        name=result.project,
        tags={
            "mlre.metric": result.metric,
            "mlre.holdout_score": f"{result.holdout_score:.6f}",
            "mlre.data_sha256": inputs.table.sha256,
        },
    )
    parent.set_tags(
        {
            "mlre.model_uri": registered.uri,
            "mlre.model_version": registered.version,
            "mlre.model_sha256": registered.sha256,
        }
    )
    if result.scored is not None:  # the registered model is a refit: keep the scored one
        sha = log_hashed_file(parent.run_id, result.scored.path, SCORED_MODEL)
        parent.set_tags({"mlre.scored_model_sha256": sha})
    result.run_id = parent.run_id
    result.model_uri = registered.uri
    result.model_version = registered.version
    result.model_sha256 = registered.sha256


def _log_run(parent: Any, result: Any, report: Any, inputs: Any) -> None:
    """The run's tags, parameters, metrics and artifacts (leaderboard, findings, spec, recipe)."""
    spec = inputs.spec
    parent.set_tags(
        {
            "mlre.data_sha256": inputs.table.sha256,
            "mlre.source": inputs.table.source,
            **({"mlre.test_source": inputs.test.source} if inputs.test else {}),
            "mlre.task": result.task,
            "mlre.metric": result.metric,
        }
    )
    parent.log_params(
        {
            "target": spec.target,
            "task": result.task,
            "metric": result.metric,
            "time_budget": spec.time_budget,
            "seed": spec.seed,
            "holdout": spec.holdout,
            "holdout_method": result.scheme["holdout"],
            "search": result.scheme["search"],
            "rows": report.n_rows,
            "columns": report.n_cols,
            "refit": spec.refit,
            "refit_rows": (result.refit or {}).get("rows", 0),
        }
    )
    parent.log_metrics(
        {
            f"search_{result.metric}": result.search_score,
            **(
                {}
                if result.search_interval is None
                else {
                    f"search_{result.metric}_low": result.search_interval[0],
                    f"search_{result.metric}_high": result.search_interval[1],
                }
            ),
            **{f"holdout_{k}": v for k, v in result.holdout.items()},
            **{f"baseline_{k}": v for k, v in result.baseline.items()},
            "trials": len(result.leaderboard),
            # the refitted model on the holdout: a fingerprint for replays (it learnt from those
            # rows when they joined the refit), not a score
            **{f"refit_holdout_{k}": v for k, v in (result.refit or {}).get("holdout", {}).items()},
        }
    )
    parent.log_json(result.leaderboard, "leaderboard.json")
    parent.log_text(
        pd.DataFrame(result.leaderboard).drop(columns=["params"]).to_csv(index=False),
        "leaderboard.csv",
    )
    parent.log_json(result.findings.to_list(), "findings.json")
    parent.log_json(result.summary(), "summary.json")
    parent.log_text(spec.model_dump_json(indent=2), "spec.json")
    # what `mlre reproduce` refits: every member exactly (weights unrounded, folds or a refit)
    parent.log_json(recipe(result.model, result.refit), "recipe.json")


def recipe(model: Any, refit: dict[str, Any] | None = None) -> dict[str, Any]:
    """How the final model was built, exactly enough to build it again: the scored model's
    members (recorded by the refit when ``model`` is one), and that refit on every labelled
    row."""
    if refit is None:
        return {"task": model.task, "refit": None, "members": model.recipe()}
    return {
        "task": model.task,
        "refit": {k: refit[k] for k in ("rows", "includes_holdout", "members")},
        "members": refit["scored_members"],
    }
