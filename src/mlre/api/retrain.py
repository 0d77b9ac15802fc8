"""``mlre retrain``: a challenger trained on fresh data with the champion's spec, compared with
the champion on the same recent held-out rows, and put in shadow only when it is better."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlre.errors import InputError, TrackingError
from mlre.spec import Task

if TYPE_CHECKING:
    from mlre.evaluate.compare import Comparison


@dataclass
class RetrainResult:
    """What retraining produced and why it was (or was not) made the challenger."""

    name: str
    champion_version: str
    new_version: str | None
    holdout_rows: int
    comparison: Comparison
    challenger: bool
    reason: str
    run_id: str | None = None
    new_run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "champion_version": self.champion_version,
            "new_version": self.new_version,
            "holdout_rows": self.holdout_rows,
            "comparison": dict(self.comparison.__dict__),
            "challenger": self.challenger,
            "reason": self.reason,
            "run_id": self.run_id,
            "new_run_id": self.new_run_id,
        }


def _recent_split(
    df: pd.DataFrame, spec: Any, task: Task, fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The most recent ``fraction`` of the rows when the spec names a time column, else a
    seeded (stratified) random share: the rows both models are judged on."""
    from sklearn.model_selection import train_test_split

    if spec.time_column and spec.time_column in df.columns:
        order = (
            pd.to_datetime(df[spec.time_column], errors="coerce").argsort(kind="stable").to_numpy()
        )
        cut = round(len(df) * (1 - fraction))
        return df.iloc[order[:cut]], df.iloc[order[cut:]]
    stratify = df[spec.target] if task != "regression" else None
    train, hold = train_test_split(
        df, test_size=fraction, random_state=spec.seed, stratify=stratify
    )
    return train, hold


def retrain(
    model: str,
    data: str | Path | pd.DataFrame,
    *,
    time_budget: float | None = None,
    holdout: float = 0.2,
    shadow: bool = True,
    track: bool = True,
    progress: Any = None,
) -> RetrainResult:
    """Train a new version of ``model`` (a registered name or ``models:/...``) on ``data``
    with the spec of the run that made the serving version; score both on the most recent
    ``holdout`` of ``data`` (paired bootstrap, as ``mlre compare`` does) and, when the new one
    is better beyond the practical margin, make it the challenger in shadow. The champion is
    never replaced here: promotion goes through ``mlre promote`` and its gate."""
    import mlre
    from mlre.api.recorded import run_inputs
    from mlre.data.load import load_table
    from mlre.evaluate.metrics import get_metric
    from mlre.spec import as_task
    from mlre.track.registry import load_model
    from mlre.track.releases import resolve_version, start_trial
    from mlre.track.store import store_client

    if not 0.05 <= holdout <= 0.5:
        raise InputError(f"--holdout must be between 0.05 and 0.5, not {holdout}")
    name, version = resolve_version(model)
    champion_run = store_client().get_model_version(name, version).run_id
    df = data if isinstance(data, pd.DataFrame) else load_table(data).frame
    run, spec, _ = run_inputs(champion_run, df)
    df = _labelled_rows(df, spec.target)
    task = as_task(run.data.params.get("task") or "binary")
    metric = get_metric(run.data.params.get("metric") or spec.resolved_metric(task))
    train, hold = _recent_split(df, spec, task, holdout)
    champion = load_model(f"models:/{name}/{version}").model
    missing = [c.name for c in champion.contract.features if c.name not in df.columns]
    if missing:
        raise InputError(f"the fresh data lacks the model's column {missing[0]!r}")
    budget = time_budget if time_budget is not None else spec.time_budget
    result = mlre.run(
        train,
        spec=spec,
        test=hold,
        time_budget=budget,
        track=True,
        progress=progress,
        report=False,
        force=True,
    )
    if result.model_uri is None:  # a tracked run registers its model
        raise TrackingError("the retrained model was not registered", hint="see `mlre runs`")
    new = load_model(result.model_uri).model
    names = (f"champion v{version}", f"retrained v{result.model_version}")
    comparison, judged = _judge(champion, new, hold, spec, task, metric, names)
    better = comparison.verdict == "helps"
    reason = (
        f"retrained on {len(train):,} fresh rows and judged on {judged:,} held-out "
        f"recent rows: {comparison.sentence} (verdict: {comparison.verdict})"
    )
    made = False
    if better and shadow:
        start_trial(name, str(result.model_version), "shadow", reason=reason, actor="mlre retrain")
        made = True
    out = RetrainResult(
        name,
        version,
        result.model_version,
        judged,
        comparison,
        made,
        reason if made else f"{reason}; left as a candidate, not made the challenger",
        new_run_id=result.run_id,
    )
    if track:
        out.run_id = _record(out, spec.project_name)
    return out


def _labelled_rows(df: pd.DataFrame, target: str) -> pd.DataFrame:
    """The rows of the fresh data with a label; too few to train and judge a model is an error."""
    if target not in df.columns:
        raise InputError(f"the fresh data has no {target!r} column: retraining needs labels")
    df = df[df[target].notna()].reset_index(drop=True)
    if len(df) < 100:
        raise InputError(f"only {len(df)} labelled rows: too few to train and judge a model")
    return df


def _judge(
    champion: Any,
    new: Any,
    hold: pd.DataFrame,
    spec: Any,
    task: Task,
    metric: Any,
    names: tuple[str, str],
) -> tuple[Comparison, int]:
    """The champion against the retrained model on the held-out rows whose label the champion
    knows (paired bootstrap, as ``mlre compare`` does), and how many rows that was."""
    from mlre.evaluate.compare import default_rope, paired_bootstrap
    from mlre.search.job import encode_target

    classes = None if task == "regression" else champion.classes_
    y = encode_target(hold[spec.target], task, classes).y
    keep = y >= 0 if task != "regression" else ~np.isnan(y)
    rows = hold[keep]

    def answer(m: Any) -> np.ndarray:
        return np.asarray(m.predict_proba(rows) if task != "regression" else m.predict(rows))

    base = answer(champion)
    comparison = paired_bootstrap(
        y[keep],
        base,
        answer(new),
        metric,
        rope=default_rope(np.array([metric(y[keep], base)]), metric.name),
        seed=spec.seed,
        names=names,
    )
    return comparison, int(keep.sum())


def _record(out: RetrainResult, project: str) -> str:
    """Record the retraining and its verdict in MLflow; returns the run's id."""
    from mlre.track import tracked_run

    with tracked_run(project, "retrain", {"mlre.kind": "retrain"}) as parent:
        parent.set_tags(
            {
                "mlre.champion_version": out.champion_version,
                "mlre.verdict": out.comparison.verdict,
                "mlre.new_version": str(out.new_version),
                "mlre.challenger": str(out.challenger).lower(),
            }
        )
        parent.log_json(out.to_dict(), "retrain/retrain.json")
        return parent.run_id
