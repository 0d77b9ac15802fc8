"""``mlre causal`` and ``mlre abtest``: effects of a treatment from observational data or an
experiment, tracked in MLflow, with a self-contained HTML page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlre.errors import InputError

if TYPE_CHECKING:
    from mlre.causal.abtest import ABTest
    from mlre.causal.analysis import CausalResult
    from mlre.causal.model import CausalModel


def _table(
    data: str | Path | pd.DataFrame, na_values: list[str] | None
) -> tuple[pd.DataFrame, str]:
    """The frame and the sha256 of its source (empty for a frame given in memory)."""
    if isinstance(data, pd.DataFrame):
        return data, ""
    from mlre.data.load import load_table

    table = load_table(data, na_values=tuple(na_values or ()))
    return table.frame, table.sha256


def _columns(value: list[str] | str | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [c.strip() for c in value.split(",") if c.strip()]
    return [c.strip() for v in value for c in str(v).split(",") if c.strip()]


def format_number(v: float | None) -> str:
    """An effect or a difference for people: thousands separated, four significant digits
    below 1,000, "-" when there is none."""
    from mlre.causal.estimators import number

    return number(v)


def causal_effect(
    data: str | Path | pd.DataFrame,
    *,
    treatment: str,
    outcome: str,
    confounders: list[str] | str = "auto",
    effect_modifiers: list[str] | str | None = None,
    instruments: list[str] | str | None = None,
    estimand: str = "ATE",
    treated_value: Any = None,
    families: list[str] | str | None = None,
    trim: float = 0.01,
    refute: bool = True,
    bootstrap: int = 50,
    seed: int = 0,
    na_values: list[str] | None = None,
    id_columns: list[str] | None = None,
    project: str | None = None,
    track: bool = True,
    report: str | Path | None = None,
    known_effect: float | None = None,
    step: Callable[[str], None] | None = None,
) -> CausalResult:
    """The effect of a binary ``treatment`` on a numeric ``outcome``, adjusted for
    ``confounders`` (a list, or "auto" for every other usable column): regression adjustment,
    IPW, doubly robust, double ML and matching estimates of the ATE and the ATT with 95%
    intervals, overlap and balance diagnostics, refutations, and with ``effect_modifiers``
    the heterogeneous effect. ``estimand`` picks the headline (and the one refuted).

    Returns a ``CausalResult``; InputError for a question the table cannot answer."""
    from mlre.causal.analysis import analyse
    from mlre.causal.model import build_model
    from mlre.findings import Findings

    estimand = estimand.upper()
    df, sha = _table(data, na_values)
    chosen = _nuisance_families(families)
    if isinstance(confounders, str) and confounders.strip().lower() != "auto":
        confounders = _columns(confounders)
    elif isinstance(confounders, str):
        confounders = "auto"
    if bootstrap < 10:
        raise InputError(f"--bootstrap needs at least 10 replicates, got {bootstrap}")
    model, rows, profiles, findings = build_model(
        df,
        treatment=treatment,
        outcome=outcome,
        confounders=confounders,
        modifiers=_columns(effect_modifiers),
        instruments=_columns(instruments),
        treated_value=treated_value,
        id_columns=id_columns,
    )
    result = analyse(
        model,
        rows,
        profiles,
        estimand=estimand,
        families=chosen,
        trim=trim,
        refute=refute,
        bootstrap=bootstrap,
        seed=seed,
        step=step,
    )
    result.findings = Findings([*findings, *result.findings])
    page = None
    if report is not None or track:
        from mlre.causal.page import causal_page

        page = causal_page(result, known_effect)
        if report is not None:
            Path(report).write_text(page, encoding="utf-8")
    if track:
        settings = {"estimand": estimand, "trim": trim, "seed": seed}
        result.run_id = _record_effect(
            result, model, sha, project or f"{outcome}-causal", settings, chosen, page
        )
    return result


def _nuisance_families(families: list[str] | str | None) -> list[str]:
    """The model families that fit the nuisance models (the defaults when none are named);
    a clear error for a name that is no installed family."""
    from mlre.causal.nuisance import DEFAULT_FAMILIES
    from mlre.evaluate.ideas import default_params

    chosen = _columns(families) or list(DEFAULT_FAMILIES)
    for f in chosen:
        default_params(f)
    return chosen


def _record_effect(
    result: CausalResult,
    model: CausalModel,
    sha: str,
    project: str,
    settings: dict[str, Any],
    families: list[str],
    page: str | None,
) -> str:
    """Record a causal analysis in MLflow: every estimate with its interval, the question asked
    and the ``settings`` (estimand, trim, seed) it was answered with; returns the run's id."""
    from mlre.track.store import record

    metrics: dict[str, float] = {}
    for k, items in result.estimates.items():
        for e in [result.naive[k], *items]:
            metrics |= {
                f"{k}.{e.method}": e.value,
                f"{k}.{e.method}.ci_low": e.low,
                f"{k}.{e.method}.ci_high": e.high,
            }
    return record(
        project,
        "causal",
        tags={"mlre.data_sha256": sha, "mlre.estimand": settings["estimand"]},
        params={
            "treatment": model.treatment,
            "outcome": model.outcome,
            "confounders": ",".join(model.confounders),
            "effect_modifiers": ",".join(model.modifiers),
            "instruments": ",".join(model.instruments),
            **settings,
            "nuisance_families": ",".join(families),
        },
        metrics=metrics,
        document=result.to_dict(),
        page=page,
    )


def abtest(
    data: str | Path | pd.DataFrame,
    *,
    variant: str,
    metric: str,
    covariate: str | None = None,
    control: str | None = None,
    expected_split: list[float] | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    target_effect: float | None = None,
    na_values: list[str] | None = None,
    project: str | None = None,
    track: bool = True,
    report: str | Path | None = None,
) -> ABTest:
    """An experiment's result: difference in ``metric`` between the variants with 95%
    intervals (CUPED-adjusted by ``covariate`` when given), the sample-ratio check, power and
    the minimum detectable effect. Returns an ``ABTest``."""
    from mlre.causal.abtest import abtest as analyse_test

    df, sha = _table(data, na_values)
    test = analyse_test(
        df,
        variant=variant,
        metric=metric,
        covariate=covariate,
        control=control,
        expected_split=expected_split,
        alpha=alpha,
        power=power,
        target_effect=target_effect,
    )
    page = None
    if report is not None or track:
        from mlre.causal.page import abtest_page

        page = abtest_page(test)
        if report is not None:
            Path(report).write_text(page, encoding="utf-8")
    if track:
        from mlre.track.store import record

        metrics = {"srm_p_value": test.srm_p_value, "mde": test.mde}
        for c in test.comparisons:
            r = c.cuped or c.__dict__
            metrics |= {
                f"{c.variant}.difference": r["difference"],
                f"{c.variant}.p_value": r["p_value"],
            }
        test.run_id = record(
            project or f"{metric}-abtest",
            "abtest",
            tags={"mlre.data_sha256": sha},
            params={
                "variant": variant,
                "metric": metric,
                "covariate": covariate or "",
                "control": test.comparisons[0].control,
                "alpha": alpha,
            },
            metrics=metrics,
            document=test.to_dict(),
            page=page,
        )
    return test
