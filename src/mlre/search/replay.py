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
from mlre.search.trial import TrialData, fit_fold


def rebuild(
    recipe: dict[str, Any], prepared: Prepared, contract: DataContract, metric: str
) -> MlreModel:
    """The model ``recipe`` describes, fitted on ``prepared`` (the run's split and folds)."""
    data = prepared.data
    deadline = time.monotonic() + 7 * 24 * 3600  # no clock: a replay fits what the run fitted
    members = []
    for m in recipe["members"]:
        n = int(m["bagged_models"])
        if n == len(data.folds):
            pipes = [fit_fold(m["family"], m["params"], data, k, deadline)[0] for k in range(n)]
        elif n == 1:  # refitted on every training row, boosted trees stopping on a tenth
            y = prepared.y_train
            full = TrialData(
                prepared.train[prepared.plan.columns],
                y,
                validation_split(y, task=data.task, fraction=0.1, seed=data.seed),
                data.task,
                data.n_classes,
                prepared.plan,
                data.metric,
                data.seed,
            )
            pipes = [fit_fold(m["family"], m["params"], full, 0, deadline)[0]]
        else:
            raise InputError(
                f"cannot rebuild a {m['family']} member of {n} models over {len(data.folds)} folds"
            )
        members.append(Member(m["family"], m["params"], float(m["weight"]), pipes))
    return MlreModel(data.task, members, prepared.classes, contract, metric)


def rebuild_refit(refit: dict[str, Any], scored: MlreModel, prepared: Prepared) -> MlreModel:
    """The refit a recipe records (its members' configurations, rounds included, and weights),
    fitted again on every labelled row of ``prepared``."""
    from mlre.search.refit import RefitMember
    from mlre.search.refit import refit as fit_again

    members = [
        RefitMember(m["family"], m["params"], float(m["weight"]), m.get("rounds"))
        for m in refit["members"]
    ]
    X, y = prepared.every_row()
    data = prepared.data
    return fit_again(scored, members, X, y, plan=prepared.plan, task=data.task, seed=data.seed,
                     deadline=time.monotonic() + 7 * 24 * 3600)  # fmt: skip
