"""``mlre reproduce RUN``: replay a finished run and say whether its scores come out the same.

Two replays. The recorded model (hash-checked) scores the holdout again, re-derived from the data
and the spec's seed: this checks the data, the split and the libraries' predictions. Then the
model is built again from its recipe (every member's family and parameters, fitted on the same
folds with the same seeds, or refitted on every training row as the run did) and scored: this
checks training. A run that registered its recipe refitted on every labelled row kept the
scored model beside it: the scored model is what the holdout checks, and the refit is replayed
too, its predictions on the holdout set against the ones recorded (a fingerprint, not a score:
it learnt from those rows). The search itself is not rerun (it is paced by the clock, so the trials it
reaches depend on the machine); what it chose is refitted. When scores differ, the data hash,
package versions, Python and the git commit recorded by the run are set against today's.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlre.errors import InputError

log = logging.getLogger(__name__)

#: Scores equal to this relative tolerance count as the same (float summation order aside).
TOLERANCE = 1e-9


@dataclass
class ReproduceResult:
    """What replaying a run gave, against what it recorded."""

    run_id: str
    metric: str
    recorded: dict[str, float]
    reevaluated: dict[str, float]  # the recorded model on the re-derived holdout
    refitted: dict[str, float] | None  # the model rebuilt from its recipe
    differences: list[str] = field(default_factory=list)
    # a run that registered its recipe refitted on every labelled row: that model on the
    # holdout as recorded, as registered today, and as refitted again (a fingerprint each)
    served_recorded: dict[str, float] = field(default_factory=dict)
    served_reevaluated: dict[str, float] = field(default_factory=dict)
    served_refitted: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)
    replay_run_id: str | None = None

    @staticmethod
    def _same(a: dict[str, float], b: dict[str, float] | None) -> bool:
        if b is None:
            return False
        keys = set(a) & set(b)
        return bool(keys) and all(abs(a[k] - b[k]) <= TOLERANCE * max(1.0, abs(a[k])) for k in keys)

    @property
    def evaluation_matches(self) -> bool:
        """The recorded models score the re-derived holdout as recorded."""
        served = not self.served_recorded or self._same(
            self.served_recorded, self.served_reevaluated
        )
        return self._same(self.recorded, self.reevaluated) and served

    @property
    def training_matches(self) -> bool:
        """The models rebuilt from the recipe score as recorded (the refit too, if any)."""
        served = not self.served_recorded or self._same(self.served_recorded, self.served_refitted)
        return self._same(self.recorded, self.refitted) and served

    @property
    def reproduced(self) -> bool:
        return self.evaluation_matches and self.training_matches

    def verdict(self) -> str:
        """The outcome in words."""
        m = self.metric
        rec = self.recorded.get(m)
        if self.reproduced:
            return f"reproduced exactly: holdout {m} {rec:.6g} from the recorded model and from a refit"
        parts = []
        if not self.evaluation_matches:
            parts.append(
                f"the recorded model now scores {m} {self.reevaluated.get(m, float('nan')):.6g} "
                f"on the holdout (recorded {rec:.6g})"
            )
        if self.refitted is None:
            parts.append("the model could not be rebuilt from its recipe")
        elif not self._same(self.recorded, self.refitted):
            parts.append(
                f"the model rebuilt from its recipe scores {self.refitted.get(m, float('nan')):.6g}"
                f" (recorded {rec:.6g})"
            )
        if self.served_recorded and not self._same(self.served_recorded, self.served_refitted):
            again = (self.served_refitted or {}).get(m, float("nan"))
            parts.append(
                f"the refit on every labelled row gives {m} {again:.6g} on the holdout "
                f"(recorded {self.served_recorded.get(m, float('nan')):.6g})"
            )
        why = (
            "; what differs: " + "; ".join(self.differences)
            if self.differences
            else "; data, versions and commit are the same, so a step of training is not "
            "deterministic"
        )
        return "not reproduced: " + "; ".join(parts) + why

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "metric": self.metric,
            "recorded": self.recorded,
            "reevaluated": self.reevaluated,
            "refitted": self.refitted,
            "evaluation_matches": self.evaluation_matches,
            "training_matches": self.training_matches,
            "reproduced": self.reproduced,
            "served_recorded": self.served_recorded,
            "served_reevaluated": self.served_reevaluated,
            "served_refitted": self.served_refitted,
            "differences": self.differences,
            "notes": self.notes,
            "verdict": self.verdict(),
            "replay_run_id": self.replay_run_id,
        }


def reproduce(
    run_id: str,
    *,
    data: str | Path | pd.DataFrame | None = None,
    test: str | Path | pd.DataFrame | None = None,
    track: bool = True,
) -> ReproduceResult:
    """Replay run ``run_id`` and compare its holdout scores with the recorded ones."""
    from mlre.api.inputs import contract_of, load_run_inputs
    from mlre.api.recorded import finished_run, recorded_task
    from mlre.search.job import holdout_scores, prepare
    from mlre.spec import build_spec
    from mlre.track.registry import load_model

    client, run = finished_run(run_id)
    tags, params = run.data.tags, run.data.params
    spec = build_spec(
        json.loads(_artifact(client, run_id, "spec.json")), f"the spec of run {run_id}"
    )
    source = data if data is not None else tags.get("mlre.source")
    test_source = test if test is not None else tags.get("mlre.test_source")
    for label, where in (("data", source), ("test table", test_source)):
        if where is not None and not isinstance(where, pd.DataFrame) and not Path(where).exists():
            raise InputError(
                f"the {label} of run {run_id} is no longer at {where}",
                hint=f"pass --{'data' if label == 'data' else 'test'} with the same table",
            )
    if source is None:
        raise InputError(f"run {run_id} recorded no data location", hint="pass --data")
    inputs = load_run_inputs(source, spec, test_source)
    task = recorded_task(run, inputs)
    metric = params.get("metric") or spec.resolved_metric(task)
    metrics = run.data.metrics
    recorded = {
        k.removeprefix("holdout_"): v for k, v in metrics.items() if k.startswith("holdout_")
    }
    result = ReproduceResult(run_id, metric, recorded, {}, None)
    result.served_recorded = {
        k.removeprefix("refit_holdout_"): v
        for k, v in metrics.items()
        if k.startswith("refit_holdout_")
    }
    result.differences = _differences(tags, params, inputs.table.sha256)
    contract = contract_of(inputs)
    prepared = prepare(inputs.df, spec, task, contract, inputs.test.frame if inputs.test else None)
    X_hold = prepared.hold[prepared.plan.columns]

    def score(model: Any) -> dict[str, float]:
        pred = model.predict_proba(X_hold) if task != "regression" else model.predict(X_hold)
        return holdout_scores(task, prepared.y_hold, np.asarray(pred))

    from mlre.api.recorded import run_model_uri, scored_model

    uri = run_model_uri(run)
    if uri:
        result.reevaluated = score(scored_model(run))
        if result.served_recorded:
            result.served_reevaluated = score(load_model(uri).model)
    else:
        result.notes.append("the run registered no model to score again")
    try:
        recipe = json.loads(_artifact(client, run_id, "recipe.json"))
    except InputError:
        recipe = None
        result.notes.append(
            "the run recorded no recipe (it predates them); only its model was re-scored"
        )
    if recipe is not None:
        from mlre.search.replay import rebuild

        model = rebuild(recipe, prepared, contract, metric)
        result.refitted = score(model)
        if recipe.get("refit"):
            from mlre.search.replay import rebuild_refit

            result.served_refitted = score(rebuild_refit(recipe["refit"], model, prepared))
    if track:
        result.replay_run_id = _record(spec.project_name, result)
    return result


def _artifact(client: Any, run_id: str, path: str) -> str:
    try:
        return Path(client.download_artifacts(run_id, path)).read_text()
    except Exception:
        raise InputError(f"run {run_id} has no {path}") from None


def _differences(
    tags: dict[str, str], params: dict[str, str], data_sha256: str | None
) -> list[str]:
    """What the run recorded about its world that is not so today."""
    from mlre.track.store import provenance

    out = []
    recorded_sha = tags.get("mlre.data_sha256")
    if recorded_sha and data_sha256 and recorded_sha != data_sha256:
        out.append(f"the data (hash {data_sha256[:12]}…, recorded {recorded_sha[:12]}…)")
    now = provenance()
    for key, value in sorted(tags.items()):
        if key.startswith("mlre.version."):
            current = now.get(key)
            if current != value:
                pkg = key.removeprefix("mlre.version.")
                out.append(f"{pkg} {value} → {current or 'not installed'}")
    if tags.get("mlre.python") and tags.get("mlre.python") != now.get("mlre.python"):
        out.append(f"Python {tags['mlre.python']} → {now.get('mlre.python')}")
    commit = tags.get("mlflow.source.git.commit")
    if commit and now.get("mlflow.source.git.commit") and commit != now["mlflow.source.git.commit"]:
        out.append(f"git commit {commit[:10]} → {now['mlflow.source.git.commit'][:10]}")
    return out


def _record(project: str, result: ReproduceResult) -> str:
    from mlre.track import tracked_run

    with tracked_run(project, "reproduce", {"mlre.kind": "reproduce"}) as parent:
        parent.set_tags(
            {
                "mlre.reproduces": result.run_id,
                "mlre.reproduced": str(result.reproduced).lower(),
            }
        )
        metrics = {f"reevaluated_{k}": v for k, v in result.reevaluated.items()}
        metrics |= {f"refitted_{k}": v for k, v in (result.refitted or {}).items()}
        metrics |= {f"served_refitted_{k}": v for k, v in (result.served_refitted or {}).items()}
        parent.log_metrics(metrics)
        parent.log_json(result.to_dict(), "reproduce.json")
        return parent.run_id
