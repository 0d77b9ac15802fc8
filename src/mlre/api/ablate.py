"""``mlre ablate``: what each feature group is worth to a finished run's best configuration."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlre.api.compare import Progress, paired_comparison, record_comparison, to_dict
from mlre.api.recorded import recorded_task, run_inputs

if TYPE_CHECKING:
    from mlre.evaluate.ablation import GroupWorth
    from mlre.evaluate.compare import CompareResult


def ablate(
    run_id: str,
    groups: str,
    *,
    data: str | Path | pd.DataFrame | None = None,
    repeats: int | None = None,
    folds: int | None = None,
    rope: float | None = None,
    track: bool = True,
    progress: Progress | None = None,
) -> AblationResult:
    """What each feature group is worth to run ``run_id``'s best configuration: the model refitted
    without each group on the same repeated folds, the loss tested (Holm over the groups).

    Returns an ``AblationResult`` with the comparison and each group's worth, most valuable
    first. The run's table is read from where it was (or ``data``) and must be unchanged.
    """
    from mlre.api.inputs import contract_of, load_run_inputs
    from mlre.errors import InputError
    from mlre.evaluate.ablation import ablation_candidates, group_worth, parse_groups
    from mlre.evaluate.metrics import get_metric
    from mlre.search.job import feature_plan

    run, spec, (board, source) = run_inputs(run_id, data)
    best = next((r for r in board if r.get("status") == "ok"), None)
    if best is None:
        raise InputError(f"run {run_id} has no finished trial to ablate")
    inputs = load_run_inputs(source, spec)
    sha = inputs.table.sha256
    recorded = run.data.tags.get("mlre.data_sha256")
    if data is None and recorded and sha != recorded:
        raise InputError(
            f"the table at {source} has changed since run {run_id} (hash {sha[:12]}…, "
            f"recorded {recorded[:12]}…)",
            hint="pass --data with the table the run used",
        )
    task = recorded_task(run, inputs)
    contract = contract_of(inputs)
    plan = feature_plan(contract, spec)
    parsed = parse_groups(groups, plan.columns)
    result = paired_comparison(
        inputs.df,
        spec,
        task,
        contract,
        plan,
        ablation_candidates(best["family"], best["params"], parsed),
        get_metric(run.data.params.get("metric") or spec.resolved_metric(task)),
        repeats=repeats,
        folds=folds,
        rope=rope,
        progress=progress,
    )
    ablation = AblationResult(run_id, best["family"], result, group_worth(result, parsed))
    if track:
        ablation.run_id_recorded = record_comparison(spec.project_name, result, sha)
    return ablation


class AblationResult:
    """The ablation of one run: the model it refitted, the comparison, each group's worth."""

    def __init__(
        self, run_id: str, family: str, comparison: CompareResult, groups: list[GroupWorth]
    ) -> None:
        self.run_id = run_id
        self.family = family
        self.comparison = comparison
        self.groups = groups
        self.run_id_recorded: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ablation, JSON-ready."""
        return {
            "run_id": self.run_id,
            "family": self.family,
            "groups": [dict(g.__dict__) for g in self.groups],
            "comparison": to_dict(self.comparison),
            "recorded_as": self.run_id_recorded,
        }
