"""The search's Optuna glue: a TPE study per tuned family, seeded with what the portfolio found,
and the callbacks a trial uses to report its folds (pruning) and its end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlre.models.families import Family
from mlre.models.target import KEY as TARGET_KEY
from mlre.models.target import TRANSFORMS
from mlre.search.trial import TrialResult
from mlre.spec import Task


def seeded_study(
    family: Family, trials: list[TrialResult], task: Task, seed: int, log_target: bool
) -> Any:
    """A TPE study (with median pruning) of ``family``'s space that has learnt from the
    finished ``trials`` of that family (``log_target``: the target transform is a choice too)."""
    import optuna
    from optuna.distributions import CategoricalDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=4, multivariate=True, constant_liar=True
    )
    median = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=median)
    for t in trials:
        if t.family == family.name and t.status == "ok":
            dists = distributions(family, task, t.params)
            values = dict(t.params)
            if log_target:
                dists[TARGET_KEY] = CategoricalDistribution(TRANSFORMS)
                values.setdefault(TARGET_KEY, "none")
            if dists:
                study.add_trial(
                    optuna.trial.create_trial(
                        params={k: values[k] for k in dists}, distributions=dists, value=t.loss
                    )
                )
    return study


def pruner(trial: Any) -> Callable[[int, float], bool]:
    """A trial's ``should_prune``: reports a fold's loss, says whether the trial is hopeless."""

    def should_prune(step: int, value: float) -> bool:
        trial.report(value, step)
        return bool(trial.should_prune())

    return should_prune


def teller(study: Any, trial: Any) -> Callable[[TrialResult], None]:
    """What tells ``study`` how ``trial`` ended."""
    import optuna

    def tell(result: TrialResult) -> None:
        if result.status == "ok":
            study.tell(trial, result.loss)
        elif result.status == "pruned":
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)

    return tell


def distributions(family: Family, task: Task, params: dict[str, Any]) -> dict[str, Any]:
    """The Optuna distributions of ``family``'s space for the keys of ``params`` it can hold."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    probe = optuna.create_study().ask()
    family.space(probe, task)
    out = {}
    for key, dist in probe.distributions.items():
        if key not in params:
            continue
        value = params[key]
        if isinstance(dist, CategoricalDistribution):
            fits = value in dist.choices
        elif isinstance(dist, FloatDistribution | IntDistribution):
            fits = isinstance(value, (int, float)) and dist.low <= value <= dist.high
        else:  # a kind of distribution the spaces do not use
            fits = False
        if fits:
            out[key] = dist
    return out
