"""What each group of features is worth: the model refitted without the group, on the same
repeated folds, and the loss tested like any other idea (``mlre ablate``)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlre.errors import InputError
from mlre.evaluate.compare import CompareResult
from mlre.evaluate.ideas import Candidate, FoldData, family_predictions, plan_for_columns


def parse_groups(text: str, columns: list[str]) -> dict[str, list[str]]:
    """``"demographics=age,sex;history=prev_*"`` as {group: columns}; shell-style patterns match
    the model's feature columns. Every group must match something, and no column may sit in two
    groups (the loss of removing it could not be told apart)."""
    groups: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, patterns = part.partition("=")
        name = name.strip()
        if not sep or not name or not patterns.strip():
            raise InputError(
                f"cannot read the group {part!r}",
                hint='write groups as "name=col1,col2;other=prefix_*"',
            )
        if name in groups:
            raise InputError(f"the group {name!r} is defined twice")
        chosen: list[str] = []
        for pattern in filter(None, (p.strip() for p in patterns.split(","))):
            hits = [c for c in columns if fnmatch.fnmatchcase(c, pattern)]
            if not hits:
                from mlre.errors import did_you_mean

                raise InputError(
                    f"{pattern!r} (group {name!r}) matches no feature column",
                    hint=did_you_mean(pattern, columns) or "features: " + ", ".join(columns[:20]),
                )
            chosen += [c for c in hits if c not in chosen]
        for c in chosen:
            if c in owner:
                raise InputError(f"column {c!r} is in both {owner[c]!r} and {name!r}")
            owner[c] = name
        groups[name] = chosen
    if not groups:
        raise InputError("no feature groups given", hint='e.g. --groups "demographics=age,sex"')
    return groups


def ablation_candidates(
    family: str, params: dict[str, Any], groups: dict[str, list[str]]
) -> list[Candidate]:
    """The model with every feature, then the model without each group."""

    def without(columns: list[str]) -> Any:
        def transform(fold: FoldData) -> Any:
            X_train = fold.X_train.drop(columns=columns)
            X_test = fold.X_test.drop(columns=columns)
            return X_train, X_test, plan_for_columns(fold.plan, X_train)

        return lambda f: family_predictions(family, params, f, transform)

    out = [
        Candidate("all features", family, lambda f: family_predictions(family, params, f), "family")
    ]
    for name, columns in groups.items():
        out.append(
            Candidate(
                f"without {name}",
                ",".join(columns),
                without(columns),
                "ablation",
            )
        )
    return out


@dataclass
class GroupWorth:
    """What removing a group costs, in the metric's units (positive: the model is worse)."""

    group: str
    columns: list[str]
    loss: float
    low: float
    high: float
    p_adjusted: float
    p_matters: float  # posterior probability that removing it costs more than the ROPE
    verdict: str  # "matters", "no clear effect", "not needed" or "removing it helps"


def group_worth(result: CompareResult, groups: dict[str, list[str]]) -> list[GroupWorth]:
    """Each group's worth from the comparisons, most valuable first."""
    out = []
    for c in result.comparisons:
        name = c.candidate.removeprefix("without ")
        sign = 1.0 if c.greater_is_better else -1.0
        # the loss of removing: baseline minus ablated, on the "higher is better" scale
        loss = -sign * c.difference
        low, high = sorted((-sign * c.low, -sign * c.high))
        verdict = {
            "hurts": "matters",
            "helps": "removing it helps",
            "equivalent": "not needed",
        }.get(c.verdict, "no clear effect")
        out.append(
            GroupWorth(name, groups[name], float(loss), low, high, c.p_adjusted, c.p_worse, verdict)
        )
    return sorted(out, key=lambda g: -g.loss if np.isfinite(g.loss) else np.inf)
