"""Build a run's final model again from its recipe: each member's family and parameters fitted
on the same folds with the same seeds (or refitted on every training row, as the run did), and
the refit on every labelled row that the run registered."""

from __future__ import annotations

import time
from typing import Any

from mlre.data.contract import DataContract
from mlre.data.split import validation_split
from mlre.errors import InputError
from mlre.models.final import Member, MlreModel
from mlre.search.job import Prepared
from mlre.search.schedule import out_of_fold
from mlre.search.stack import stacked_data
from mlre.search.trial import TrialData, fit_fold


def rebuild(
    recipe: dict[str, Any], prepared: Prepared, contract: DataContract, metric: str
) -> MlreModel:
    """The model ``recipe`` describes, fitted on ``prepared`` (the run's split and folds).

    A stacked recipe's first layer is fitted first; its members' out-of-fold predictions,
    blended with the recipe's level-one weights, are the column its second layer is fitted on."""
    data = prepared.data
    deadline = time.monotonic() + 7 * 24 * 3600  # no clock: a replay fits what the run fitted
    recipe_members = recipe["members"]
    stacked = any(m.get("stacked") for m in recipe_members)
    pipes: dict[int, list[Any]] = {}
    blend = None
    for i, m in enumerate(recipe_members):
        if m.get("stacked"):
            continue
        n = int(m["bagged_models"])
        if n == len(data.folds):
            fits = [fit_fold(m["family"], m["params"], data, k, deadline) for k in range(n)]
            pipes[i] = [fit[0] for fit in fits]
            weight = float(m.get("level_one", 0.0))
            if stacked and weight:
                oof = out_of_fold(data, {k: fit[1] for k, fit in enumerate(fits)})
                blend = weight * oof if blend is None else blend + weight * oof
        elif n == 1 and not stacked:  # refitted on every training row, stopping on a tenth
            pipes[i] = [fit_fold(m["family"], m["params"], _every_training_row(prepared), 0,
                                 deadline)[0]]  # fmt: skip
        else:
            raise InputError(
                f"cannot rebuild a {m['family']} member of {n} models over {len(data.folds)} folds"
            )
    if stacked:
        if blend is None:
            raise InputError("the recipe's second layer reads a first layer it does not name")
        second = stacked_data(data, blend)
        for i, m in enumerate(recipe_members):
            if m.get("stacked"):
                n = int(m["bagged_models"])
                pipes[i] = [fit_fold(m["family"], m["params"], second, k, deadline)[0]
                            for k in range(n)]  # fmt: skip
    members = [
        Member(m["family"], m["params"], float(m["weight"]), pipes[i], bool(m.get("stacked")))
        for i, m in enumerate(recipe_members)
    ]
    level_one = [float(m.get("level_one", 0.0)) for m in recipe_members] if stacked else None
    model = MlreModel(data.task, members, prepared.classes, contract, metric, level_one)
    if blend is not None:
        model.level_one_oof = blend
    return model


def _every_training_row(prepared: Prepared) -> TrialData:
    """The training part as one fit sees it: boosted trees stop early on a tenth of it."""
    data, y = prepared.data, prepared.y_train
    return TrialData(
        prepared.train[prepared.plan.columns],
        y,
        validation_split(y, task=data.task, fraction=0.1, seed=data.seed),
        data.task,
        data.n_classes,
        prepared.plan,
        data.metric,
        data.seed,
    )


def rebuild_refit(refit: dict[str, Any], scored: MlreModel, prepared: Prepared) -> MlreModel:
    """The refit a recipe records (its members' configurations, rounds included, and weights),
    fitted again on every labelled row of ``prepared``."""
    from mlre.search.refit import RefitMember
    from mlre.search.refit import refit as fit_again

    members = []
    for m in refit["members"]:
        weight, stacked = float(m["weight"]), bool(m.get("stacked"))
        members.append(RefitMember(m["family"], m["params"], weight, m.get("rounds"), 0.0, stacked))
    X, y = prepared.every_row()
    data = prepared.data
    return fit_again(scored, members, X, y, plan=prepared.plan, task=data.task, seed=data.seed,
                     deadline=time.monotonic() + 7 * 24 * 3600,
                     level_one=prepared.level_one(scored))  # fmt: skip
