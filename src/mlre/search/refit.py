"""The served model: a run's chosen recipe fitted again on every labelled row, once the holdout
has scored it.

The holdout's score belongs to the recipe (the families, their configurations and weights, all
chosen on the search's folds and scored on rows they never saw). The model a user serves then
learns from every labelled row, training and holdout together, as AutoGluon's ``refit_full``
and FLAML's ``retrain_full`` do: a fifth of the data is not given up for ever to pay for an
honest number. Each member is fitted once on all the rows. Boosted trees have no rows left to
stop early on, so they fit the rounds early stopping kept on the folds, scaled by how many more
rows the refit sees (more rows carry more signal before a model starts fitting noise).
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from mlre.features.pipeline import FeaturePlan
from mlre.models.families import FAMILIES, n_workers
from mlre.models.final import Member, MlreModel, level_one_names, with_level_one
from mlre.models.target import inner
from mlre.spec import Task

log = logging.getLogger(__name__)

#: The file name of a model kept on disk in parts.
MODEL_FILE = "model.parts"

#: A refit fits at most this many times the rounds early stopping kept on a fold.
MAX_ROUND_SCALE = 2.0
#: Projected refit seconds are stretched by this much before they are trusted.
MARGIN = 1.3


@dataclass
class RefitMember:
    """One member as the refit fits it: its configuration with the rounds set, and its weight."""

    family: str
    params: dict[str, Any]  # as fitted (a boosted family's rounds included)
    weight: float
    rounds: int | None  # the boosting rounds fitted (None: the family has none)
    seconds: float = 0.0  # the expected seconds of the fit, from the search's own fits
    stacked: bool = False  # a second-layer member: it reads the first layer's blend too

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "params": self.params,
            "weight": float(self.weight),
            "rounds": self.rounds,
            **({"stacked": True} if self.stacked else {}),
        }


def round_scale(rows: int, trained_rows: float) -> float:
    """How many more rounds a refit on ``rows`` fits than a model fitted on ``trained_rows``."""
    return float(np.clip(rows / max(1.0, trained_rows), 1.0, MAX_ROUND_SCALE))


def expected_seconds(family: str, seconds: float, rows: int, trained_rows: float) -> float:
    """Seconds a refit of ``family`` on ``rows`` rows is expected to take, from ``seconds`` for a
    fit on ``trained_rows``: a fit's time grows with its rows, a boosted one's with its rounds."""
    grow = rows / max(1.0, trained_rows)
    boosted = FAMILIES[family].rounds is not None
    return seconds * grow * (round_scale(rows, trained_rows) if boosted else 1.0)


def plan_refit(
    model: MlreModel, rows: int, trained_rows: list[float], fit_seconds: list[float]
) -> list[RefitMember]:
    """Each member of ``model`` as a refit on ``rows`` rows fits it.

    Member by member, ``trained_rows``: the rows each of its fitted pipelines saw, and
    ``fit_seconds``: the seconds one of them took to fit (they give the refit's expected time)."""
    out = []
    for member, trained, seconds in zip(model.members, trained_rows, fit_seconds, strict=True):
        family = FAMILIES[member.family]
        params, rounds = dict(member.params), None
        if family.rounds is not None and family.with_rounds is not None:
            found = [family.rounds(inner(p.named_steps["model"])) for p in member.pipelines]
            kept = [r for r in found if r]
            if kept:
                rounds = max(1, round(float(np.mean(kept)) * round_scale(rows, trained)))
                params = family.with_rounds(params, rounds)
        expected = expected_seconds(member.family, seconds, rows, trained)
        out.append(
            RefitMember(member.family, params, member.weight, rounds, expected, member.stacked)
        )
    return out


def projected_seconds(seconds: list[float], workers: int | None = None) -> float:
    """Wall seconds fits of ``seconds`` each are expected to take, run side by side."""
    if not seconds:
        return 0.0
    lanes = max(1, min(workers or n_workers(), len(seconds)))
    # the fits share the lanes; the longest one alone bounds the wall time from below
    return MARGIN * max(max(seconds), sum(seconds) / lanes)


def refit(
    model: MlreModel,
    members: list[RefitMember],
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    plan: FeaturePlan,
    task: Task,
    seed: int,
    deadline: float,
    level_one: np.ndarray | None = None,
) -> MlreModel:
    """``model``'s recipe fitted on ``X`` and ``y``: one pipeline per member, the same weights.
    A stacked recipe's second layer also reads ``level_one``, the first layer's blend on those
    rows (out of fold: a first layer refitted on them would know their labels)."""
    from mlre.search.executor import LocalExecutor
    from mlre.search.trial import fit_family

    stacked_X, stacked_plan = X, plan
    if any(m.stacked for m in members):
        if level_one is None:
            raise ValueError("a stacked recipe needs the first layer's predictions to refit")
        stacked_X = with_level_one(X, level_one, task)
        stacked_plan = replace(
            plan, numeric=[*plan.numeric, *level_one_names(task, _width(level_one))]
        )
    pool = LocalExecutor(max(1, min(n_workers(), len(members))))
    try:
        jobs = [
            pool.submit(
                fit_family,
                m.family,
                m.params,
                stacked_plan if m.stacked else plan,
                task,
                stacked_X if m.stacked else X,
                y,
                None,
                None,
                seed,
                deadline,
            )
            for m in members
        ]
        pipes = []
        for m, j in zip(members, jobs, strict=True):
            started = time.monotonic()
            pipes.append(pool.result(j)[0])
            log.debug("refitted %s in %.1fs (waited)", m.family, time.monotonic() - started)
    finally:
        pool.close()
    fitted = [
        Member(m.family, m.params, m.weight, [pipe], m.stacked)
        for m, pipe in zip(members, pipes, strict=True)
    ]
    served = MlreModel(
        model.task, fitted, model.classes, model.contract, model.metric, model.level_one
    )
    served.background = getattr(model, "background", None)
    return served


def _width(blend: np.ndarray) -> int:
    return 0 if blend.ndim == 1 else blend.shape[1]


class StoredModel:
    """A model kept on disk, out of the way: the scored model waits here while its recipe is
    refitted (the two would otherwise be in memory together, the largest moment of a run), and
    stays here for whoever asks for it (the run's record, a user of the Python API). The file
    is the model without its pipelines, then each pipeline, one pickle each (``load_in_parts``
    of the registry reads it, hash-checked)."""

    def __init__(self, model: MlreModel) -> None:
        folder = tempfile.mkdtemp(prefix="mlre-scored-")
        self._cleanup = weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        self.path = os.path.join(folder, MODEL_FILE)
        shell, parts = model.in_parts()
        try:
            with open(self.path, "wb") as f:
                for piece in [shell, *parts]:
                    pickle.dump(piece, f, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:
            self._cleanup()
            raise

    def load(self) -> MlreModel:
        """The model, read back."""
        with open(self.path, "rb") as f:
            shell = pickle.load(f)
            return shell.from_parts([pickle.load(f) for _ in range(shell.parts_count)])
