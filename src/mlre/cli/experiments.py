"""The experiment commands: does an idea help (on one table, across data sets, between two
runs), what each feature group is worth, and does a run reproduce."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mlre.cli.options import (
    FoldsOpt,
    JsonOpt,
    RayOpt,
    RepeatsOpt,
    RunDataOpt,
    SeedOpt,
    SpecOpt,
    TargetOpt,
)
from mlre.cli.output import VERDICT_STYLE, err, fold_bar, guarded, out, print_recorded, show, steps
from mlre.errors import InputError

PANEL = "Experiments"
commands = typer.Typer()

CandidatesArg = Annotated[
    list[str],
    typer.Argument(help="Model families and idea files (.py), the first the baseline."),
]
RopeOpt = Annotated[
    float | None,
    typer.Option(help="Smallest difference that matters, in the metric's units."),
]
TrackOpt = Annotated[bool, typer.Option(help="Record the comparison in MLflow.")]
MetricOpt = Annotated[str | None, typer.Option(help="Metric (default: the task's).")]
TargetFromMetaOpt = Annotated[
    bool,
    typer.Option("--target-from-meta", help="Each data set's meta.json names its target."),
]
MaxRowsOpt = Annotated[int, typer.Option(min=100, help="Larger tables are sampled to this.")]
PageOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write scores and the diagram to this page."),
]
# the options of the comparison across data sets, kept hidden on `compare` so that its old
# combined form is told which command now does it instead of failing on an unknown option
MovedFolderOpt = Annotated[Path | None, typer.Option("--datasets", hidden=True)]
MovedFlagOpt = Annotated[bool, typer.Option("--target-from-meta", hidden=True)]
MovedRowsOpt = Annotated[int | None, typer.Option("--max-rows", hidden=True)]
MovedPageOpt = Annotated[Path | None, typer.Option("--output", "-o", hidden=True)]
ACROSS_MOVED = (
    "{option} is for comparing across data sets, now a command of its own: "
    "mlre compare-datasets DIR --target-from-meta A B ..."
)
RUNS_MOVED = (
    "two finished runs are compared by a command of their own now: mlre compare-runs RUN_A RUN_B"
)


@commands.command(rich_help_panel=PANEL)
@guarded
def compare(
    candidates: CandidatesArg,
    data: Annotated[
        Path | None, typer.Option("--data", "-d", help="The table to compare on.")
    ] = None,
    target: TargetOpt = None,
    metric: MetricOpt = None,
    repeats: RepeatsOpt = None,
    folds: FoldsOpt = None,
    rope: RopeOpt = None,
    spec: SpecOpt = None,
    seed: SeedOpt = None,
    track: TrackOpt = True,
    as_json: JsonOpt = False,
    ray: RayOpt = None,
    datasets: MovedFolderOpt = None,
    target_from_meta: MovedFlagOpt = False,
    max_rows: MovedRowsOpt = None,
    output: MovedPageOpt = None,
) -> None:
    """Does an idea really help? Candidates on the same folds, tested against the first.

    Corrected resampled t-test with its interval, Wilcoxon, Bayesian correlated t-test with a
    region of practical equivalence, Holm over several ideas. Across data sets: mlre
    compare-datasets; two finished runs: mlre compare-runs."""
    from mlre.api.compare import compare as run_compare
    from mlre.api.compare import to_dict

    _refuse_moved_forms(candidates, data, datasets, target_from_meta, max_rows, output)
    with fold_bar(not as_json) as step:
        result = run_compare(
            data,
            candidates,
            target=target,
            spec=spec,
            metric=metric,
            repeats=repeats,
            folds=folds,
            rope=rope,
            seed=seed,
            track=track,
            progress=step,
            ray=ray,
        )
    show(
        result,
        _render_compare,
        as_json=as_json,
        payload=to_dict(result) | {"run_id": result.run_id},
    )
    if result.failures:
        raise typer.Exit(2)


def _refuse_moved_forms(
    candidates: list[str],
    data: Path | None,
    datasets: Path | None,
    target_from_meta: bool,
    max_rows: int | None,
    output: Path | None,
) -> None:
    """Name the command that now does what an old form of ``mlre compare`` asked for."""
    from mlre.api.recorded import looks_like_run_id

    moved = {
        "--datasets": datasets is not None,
        "--target-from-meta": target_from_meta,
        "--max-rows": max_rows is not None,
        "--output": output is not None,
    }
    for option, given in moved.items():
        if given:
            raise InputError(ACROSS_MOVED.format(option=option))
    if data is None and candidates and all(map(looks_like_run_id, candidates)):
        raise InputError(RUNS_MOVED)
    if data is None:
        raise InputError(
            "give the table to compare on: --data FILE",
            hint="across data sets: mlre compare-datasets DIR; two finished runs: "
            "mlre compare-runs RUN_A RUN_B",
        )


def _render_compare(result: Any) -> None:
    out.print(
        f"[bold]{result.metric}[/] ({'higher' if result.greater_is_better else 'lower'} is "
        f"better) over {result.repeats}x{result.folds}-fold cross-validation of "
        f"{result.rows:,} rows, every candidate on the same folds"
    )
    verdicts = {c.candidate: c for c in result.comparisons}
    table = Table(show_edge=False)
    table.add_column("candidate", style="bold")
    table.add_column(f"mean {result.metric}", justify="right")
    table.add_column("sd", justify="right")
    table.add_column("difference [95% CI]", justify="right")
    table.add_column("p (corrected)", justify="right")
    table.add_column("P(better / equal / worse)", justify="right")
    table.add_column("verdict")
    for c in result.candidates:
        if not c.ok:
            table.add_row(escape(c.name), "[red]failed[/]", "", "", "", "", "")
            continue
        row = [escape(c.name), f"{c.scores.mean():.4f}", f"{c.scores.std(ddof=1):.4f}"]
        v = verdicts.get(c.name)
        if v is None:
            row += ["", "", "", "[dim]baseline[/]"]
        else:
            style = VERDICT_STYLE[v.verdict]
            row += [
                f"{v.difference:+.4g} [{v.low:+.3g}, {v.high:+.3g}]",
                f"{v.p_adjusted:.3g}",
                f"{v.p_better:.2f} / {v.p_equivalent:.2f} / {v.p_worse:.2f}",
                f"[{style}]{v.verdict}[/]",
            ]
        table.add_row(*row)
    out.print(table)
    for v in result.comparisons:
        out.print(f"• {escape(v.sentence)}", soft_wrap=True)
    for c in result.failures:
        err.print(f"[bold red]error:[/] {escape(c.error or '')}", soft_wrap=True)
    print_recorded(result.run_id)


@commands.command("compare-datasets", rich_help_panel=PANEL)
@guarded
def compare_datasets(
    datasets: Annotated[
        Path, typer.Argument(help="A folder of data sets (one sub-folder each) to compare across.")
    ],
    candidates: CandidatesArg,
    target: TargetOpt = None,
    target_from_meta: TargetFromMetaOpt = False,
    max_rows: MaxRowsOpt = 10_000,
    output: PageOpt = None,
    repeats: Annotated[
        int | None, typer.Option(min=1, help="Repetitions of k-fold (default 2).")
    ] = None,
    folds: Annotated[int | None, typer.Option(min=2, help="Folds (default 5).")] = None,
    seed: SeedOpt = None,
    track: TrackOpt = True,
    as_json: JsonOpt = False,
    ray: RayOpt = None,
) -> None:
    """Which candidate is best across data sets? Each data set's comparison, then ranks.

    Friedman's test with the Nemenyi critical difference of mean ranks, and the Bayesian
    signed-rank test of each candidate against the first."""
    from mlre.api.across import compare_datasets as run_across
    from mlre.api.across import write_across_page

    with fold_bar(not as_json) as step:
        across = run_across(
            datasets,
            candidates,
            target=target,
            target_from_meta=target_from_meta,
            repeats=repeats,
            folds=folds,
            max_rows=max_rows,
            seed=seed or 0,
            track=track,
            progress=step,
            ray=ray,
        )
    if output is not None:
        write_across_page(across, output)
    payload = across.to_dict() | {"run_id": across.run_id}
    show(across, _render_across, as_json=as_json, payload=payload, page=output,
         page_name="critical-difference diagram")  # fmt: skip


def _render_across(across: Any) -> None:
    table = across.table()
    grid = Table(show_edge=False, title=f"mean score over the folds, {len(table)} data sets")
    grid.add_column("data set", style="bold")
    grid.add_column("metric")
    for name in across.names:
        grid.add_column(escape(name), justify="right")
    for name, row in table.items():
        grid.add_row(
            escape(name),
            across.datasets[name].metric,
            *(f"{row[n]:.4f}" for n in across.names),
        )
    out.print(grid)
    if across.ranks is not None:
        r = across.ranks
        ranks = ", ".join(
            f"{escape(n)} {v:.2f}" for n, v in zip(r.names, r.mean_ranks, strict=True)
        )
        friedman = f"; Friedman p = {r.p_value:.3g}" if r.p_value is not None else ""
        out.print(
            f"mean rank (1 = best): {ranks}; critical difference {r.critical_difference:.2f}"
            f"{friedman}"
        )
    for p in across.pairs:
        out.print(f"• {escape(p.sentence)}", soft_wrap=True)
    for name, reason in across.skipped.items():
        err.print(f"[yellow]left out[/] {escape(name)}: {escape(reason)}", soft_wrap=True)
    print_recorded(across.run_id)


@commands.command("compare-runs", rich_help_panel=PANEL)
@guarded
def compare_runs(
    run_a: Annotated[str, typer.Argument(help="The first run: the baseline.")],
    run_b: Annotated[str, typer.Argument(help="The run compared with it.")],
    rope: RopeOpt = None,
    track: TrackOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Is one finished run better than another? Paired on the holdout rows neither trained on.

    A paired bootstrap of those rows gives the interval of the difference, a p-value and the
    probability that the second run is practically better."""
    from mlre import api

    pair = api.compare_runs(run_a, run_b, rope=rope, track=track)
    if as_json:
        out.print_json(json.dumps(pair.to_dict()))
        return
    c = pair.comparison
    style = VERDICT_STYLE[c.verdict]
    out.print(f"[{style}]{c.verdict}[/]: {escape(c.sentence)}", soft_wrap=True)
    print_recorded(pair.run_id)


@commands.command(rich_help_panel=PANEL)
@guarded
def ablate(
    run_id: Annotated[str, typer.Argument(help="The `mlre run` whose best model is ablated.")],
    groups: Annotated[
        str,
        typer.Option(help='Feature groups: "name=col1,col2;other=prefix_*" (shell patterns).'),
    ],
    data: RunDataOpt = None,
    repeats: Annotated[int | None, typer.Option(min=1, help="Repetitions of k-fold.")] = None,
    folds: Annotated[int | None, typer.Option(min=2, help="Folds.")] = None,
    rope: Annotated[
        float | None, typer.Option(help="Smallest loss that matters, in the metric's units.")
    ] = None,
    track: Annotated[bool, typer.Option(help="Record the ablation in MLflow.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """What each feature group is worth to a run's best model.

    The model is refitted without each group on the same repeated folds, and the loss is tested
    (Holm-adjusted over the groups)."""
    from mlre import api

    with fold_bar(not as_json) as step:
        result = api.ablate(
            run_id,
            groups,
            data=data,
            repeats=repeats,
            folds=folds,
            rope=rope,
            track=track,
            progress=step,
        )
    show(result, _render_ablation, as_json=as_json)


def _render_ablation(result: Any) -> None:
    cmp = result.comparison
    out.print(
        f"[bold]{result.family}[/] (the best configuration of run {result.run_id}) without each "
        f"group, {cmp.repeats}x{cmp.folds}-fold cross-validation, {cmp.metric}"
    )
    full = cmp.candidates[0]
    if full.ok:
        out.print(f"all features: {cmp.metric} {full.scores.mean():.4f}")
    table = Table(show_edge=False)
    table.add_column("group", style="bold")
    table.add_column("columns")
    table.add_column("loss without it [95% CI]", justify="right")
    table.add_column("p (Holm)", justify="right")
    table.add_column("P(matters)", justify="right")
    table.add_column("verdict")
    styles = {"matters": "bold green", "removing it helps": "bold red", "not needed": "cyan"}
    for g in result.groups:
        shown = ", ".join(g.columns[:6]) + (
            f" (+{len(g.columns) - 6})" if len(g.columns) > 6 else ""
        )
        table.add_row(
            escape(g.group),
            escape(shown),
            f"{g.loss:+.4g} [{g.low:+.3g}, {g.high:+.3g}]",
            f"{g.p_adjusted:.3g}",
            f"{g.p_matters:.2f}",
            f"[{styles.get(g.verdict, 'yellow')}]{g.verdict}[/]",
        )
    out.print(table)
    for c in cmp.failures:
        err.print(f"[bold red]error:[/] {escape(c.name)}: {escape(c.error or '')}", soft_wrap=True)
    print_recorded(result.run_id_recorded)


@commands.command(rich_help_panel=PANEL)
@guarded
def reproduce(
    run_id: Annotated[str, typer.Argument(help="The `mlre run` to replay.")],
    data: RunDataOpt = None,
    test: Annotated[
        Path | None, typer.Option(help="The run's test table, if it had one elsewhere.")
    ] = None,
    track: Annotated[bool, typer.Option(help="Record the replay in MLflow.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Replay a run and say whether its scores match (exit 1 when they do not).

    The recorded model scores the re-derived holdout again and the model is rebuilt from its
    recipe; when scores differ, the data, versions and commit that differ are named."""
    from mlre import api

    with steps(not as_json) as step:
        step(f"replaying run {run_id}")
        result = api.reproduce(run_id, data=data, test=test, track=track)
    show(result, _render_replay, as_json=as_json)
    if not result.reproduced:
        raise typer.Exit(1)


def _render_replay(result: Any) -> None:
    style = "bold green" if result.reproduced else "bold red"
    out.print(f"[{style}]{escape(result.verdict())}[/]", soft_wrap=True)
    table = Table(show_edge=False)
    table.add_column("metric", style="bold")
    table.add_column("recorded", justify="right")
    table.add_column("recorded model, again", justify="right")
    table.add_column("rebuilt from the recipe", justify="right")
    for k, v in result.recorded.items():
        again = result.reevaluated.get(k)
        refit = (result.refitted or {}).get(k)
        table.add_row(
            k,
            f"{v:.6g}",
            "" if again is None else f"{again:.6g}",
            "" if refit is None else f"{refit:.6g}",
        )
    out.print(table)
    for note in result.notes:
        out.print(f"[dim]{escape(note)}[/]")
    if result.replay_run_id:
        out.print(f"[dim]recorded as MLflow run {result.replay_run_id}[/]")
