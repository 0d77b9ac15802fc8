"""The causal commands: the effect of a treatment from observational data, and A/B tests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mlre.cli.options import JsonOpt, SeedOpt, numbers
from mlre.cli.output import guarded, out, print_findings, print_recorded, show, steps

PANEL = "Causal effects"
commands = typer.Typer()

ReportOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write the HTML report to this file.")
]
TrackOpt = Annotated[bool, typer.Option(help="Record the analysis in MLflow.")]
NaOpt = Annotated[
    list[str] | None, typer.Option("--na-values", help="Extra strings that mean missing.")
]


def _num(v: float) -> str:
    from mlre.api.causal import format_number

    return format_number(v)


@commands.command(rich_help_panel=PANEL)
@guarded
def causal(
    data: Annotated[Path, typer.Argument(help="CSV/TSV/Parquet/JSON-lines file or folder.")],
    treatment: Annotated[str, typer.Option(help="The binary treatment column.")],
    outcome: Annotated[str, typer.Option(help="The numeric outcome column.")],
    confounders: Annotated[
        str, typer.Option(help="Columns to adjust for (comma-separated), or 'auto'.")
    ] = "auto",
    effect_modifiers: Annotated[
        str | None, typer.Option(help="Columns the effect may vary with (CATE).")
    ] = None,
    instruments: Annotated[
        str | None, typer.Option(help="Columns that move the treatment only (not adjusted).")
    ] = None,
    estimand: Annotated[str, typer.Option(help="The headline: ATE or ATT.")] = "ATE",
    treated_value: Annotated[
        str | None, typer.Option(help="The treatment value that means treated.")
    ] = None,
    nuisance: Annotated[
        str, typer.Option(help="Zoo families tried for the nuisance models.")
    ] = "linear,lightgbm",
    trim: Annotated[
        float, typer.Option(help="Drop rows whose propensity is this close to 0 or 1.")
    ] = 0.01,
    refute: Annotated[bool, typer.Option(help="Run the refutation tests.")] = True,
    bootstrap: Annotated[int, typer.Option(help="Refits for bootstrap intervals.")] = 50,
    na_values: NaOpt = None,
    seed: SeedOpt = None,
    output: ReportOpt = None,
    track: TrackOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """What is the effect of a treatment? ATE and ATT with intervals, diagnostics, refutations.

    Regression adjustment, inverse propensity weighting, doubly robust (AIPW), double machine
    learning and propensity-score matching; nuisance models from the model zoo, cross-fitted.
    Overlap and balance are checked, the estimate is put through placebo, random-common-cause
    and subset refutations and an E-value; with --effect-modifiers a causal forest shows how
    the effect varies."""
    from mlre import api

    with steps(not as_json) as step:
        step("checking the causal model")
        result = api.causal_effect(
            data,
            treatment=treatment,
            outcome=outcome,
            confounders=confounders,
            effect_modifiers=effect_modifiers,
            instruments=instruments,
            estimand=estimand,
            treated_value=treated_value,
            families=nuisance,
            trim=trim,
            refute=refute,
            bootstrap=bootstrap,
            seed=seed or 0,
            na_values=na_values,
            track=track,
            report=output,
            step=step,
        )
    if show(result, _render_causal, as_json=as_json, page=output):
        return
    print_recorded(result.run_id)


def _render_causal(result: Any) -> None:
    m = result.model
    for line in m.words()[:2]:
        out.print(escape(line), soft_wrap=True)
    table = Table(show_edge=False, title="effect estimates (95% intervals)", title_justify="left")
    for c in ("estimator", "estimand", "effect", "95% CI", "p", "rows"):
        table.add_column(c, justify="left" if c in ("estimator", "estimand") else "right")
    for k, items in result.estimates.items():
        for e in [result.naive[k], *items]:
            style = "bold" if e is result.primary else ""
            table.add_row(
                escape(e.label),
                k,
                f"[{style}]{_num(e.value)}[/]" if style else _num(e.value),
                f"[{_num(e.low)}, {_num(e.high)}]",
                f"{e.p_value:.3g}",
                f"{e.rows:,}",
            )
    out.print(table)
    if result.refutations:
        table = Table(show_edge=False, title="refutations", title_justify="left")
        for c in ("test", "result", "detail"):
            table.add_column(c)
        for r in result.refutations:
            mark = "[green]passed[/]" if r.passed else "[bold red]FAILED[/]"
            table.add_row(escape(r.name), mark, escape(r.detail))
        out.print(table)
    h = result.heterogeneity
    if h is not None:
        shown = ", ".join(f"{k} {v:.0%}" for k, v in h.importance.items())
        out.print(f"heterogeneity: mean CATE {_num(h.cate_mean)}; importance {escape(shown)}")
    print_findings(result.findings, info=("causal_heterogeneity",))
    if result.primary is not None:
        p = result.primary
        out.print(
            f"[bold]{result.estimand} of {escape(m.treatment)} on {escape(m.outcome)}: "
            f"{_num(p.value)}[/] (95% CI {_num(p.low)} to {_num(p.high)}, doubly robust)"
        )


@commands.command(rich_help_panel=PANEL)
@guarded
def abtest(
    data: Annotated[Path, typer.Argument(help="One row per unit of the experiment.")],
    variant: Annotated[str, typer.Option(help="The column naming each row's variant.")],
    metric: Annotated[str, typer.Option(help="The outcome: a number, or 0/1.")],
    covariate: Annotated[
        str | None, typer.Option(help="The metric before the experiment (CUPED).")
    ] = None,
    control: Annotated[str | None, typer.Option(help="The control variant.")] = None,
    expected_split: Annotated[
        str | None, typer.Option(help="Planned shares per variant, e.g. 50,50.")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    power: Annotated[float, typer.Option(help="Power for the minimum detectable effect.")] = 0.8,
    target_effect: Annotated[
        float | None, typer.Option(help="An effect to size the test for (rows needed).")
    ] = None,
    na_values: NaOpt = None,
    output: ReportOpt = None,
    track: TrackOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Did the variant win? Difference with interval, CUPED, sample-ratio check and power.

    Exit 1 on a sample-ratio mismatch (the experiment itself is broken)."""
    from mlre import api

    test = api.abtest(
        data,
        variant=variant,
        metric=metric,
        covariate=covariate,
        control=control,
        expected_split=numbers(expected_split, "--expected-split", "50,50"),
        alpha=alpha,
        power=power,
        target_effect=target_effect,
        na_values=na_values,
        track=track,
        report=output,
    )
    show(test, _render_abtest, as_json=as_json, page=output)
    if any(f.check == "ab_sample_ratio_mismatch" for f in test.findings):
        raise typer.Exit(1)


def _render_abtest(test: Any) -> None:
    table = Table(show_edge=False, title=f"{test.metric} by {test.variant_column}")
    for c in ("comparison", "adjustment", "difference", "95% CI", "relative", "p"):
        table.add_column(c, justify="left" if c in ("comparison", "adjustment") else "right")
    for c in test.comparisons:
        for kind, r in (("none", c.__dict__), ("CUPED", c.cuped)):
            if r is not None:
                table.add_row(
                    escape(f"{c.variant} vs {c.control}"),
                    kind,
                    _num(r["difference"]),
                    f"[{_num(r['low'])}, {_num(r['high'])}]",
                    f"{r['relative']:+.2%}",
                    f"{r['p_value']:.3g}",
                )
    out.print(table)
    print_findings(test.findings, info=("ab_",))
    out.print(
        f"minimum detectable effect at {test.power:.0%} power: {_num(test.mde)} "
        f"({test.mde_relative:.1%})"
        + (
            f"; rows per variant for {_num(test.target_effect)}: {test.rows_needed:,}"
            if test.rows_needed
            else ""
        )
    )
