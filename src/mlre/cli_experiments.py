"""The experiment and fairness commands of the ``mlre`` command line: compare, ablate,
reproduce, fairness and mitigate. Parse, call the API, render with Rich."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mlre.cli import JsonOpt, RayOpt, SeedOpt, SpecOpt, TargetOpt, app, err, guarded, out

VERDICT_STYLE = {
    "helps": "bold green",
    "hurts": "bold red",
    "equivalent": "cyan",
    "no clear difference": "yellow",
}


@contextmanager
def fold_bar(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar over every candidate's folds."""
    if not enabled:
        yield lambda *_: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("fitting", total=None)

        def step(name: str, done: int, total: int) -> None:
            bar.update(task, description=f"fitting {name}", completed=done, total=total)

        yield step


@app.command()
@guarded
def compare(
    candidates: Annotated[
        list[str],
        typer.Argument(
            help="Model families and idea files (.py), the first the baseline; or two run ids."
        ),
    ],
    data: Annotated[
        Path | None, typer.Option("--data", "-d", help="The table to compare on.")
    ] = None,
    datasets: Annotated[
        Path | None,
        typer.Option(help="A folder of data sets (one sub-folder each) to compare across."),
    ] = None,
    target: TargetOpt = None,
    target_from_meta: Annotated[
        bool,
        typer.Option(
            "--target-from-meta",
            help="With --datasets: each data set's meta.json names its target.",
        ),
    ] = False,
    max_rows: Annotated[
        int, typer.Option(min=100, help="With --datasets: larger tables are sampled to this.")
    ] = 10_000,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="With --datasets: write scores and the diagram to this page."
        ),
    ] = None,
    metric: Annotated[str | None, typer.Option(help="Metric (default: the task's).")] = None,
    repeats: Annotated[
        int | None,
        typer.Option(min=1, help="Repetitions of k-fold (default 10, 5 above 10k rows)."),
    ] = None,
    folds: Annotated[
        int | None, typer.Option(min=2, help="Folds (default 10, 2 above 10,000 rows).")
    ] = None,
    rope: Annotated[
        float | None,
        typer.Option(help="Smallest difference that matters, in the metric's units."),
    ] = None,
    spec: SpecOpt = None,
    seed: SeedOpt = None,
    track: Annotated[bool, typer.Option(help="Record the comparison in MLflow.")] = True,
    as_json: JsonOpt = False,
    ray: RayOpt = None,
) -> None:
    """Does an idea really help? Candidates on the same folds, tested against the first.

    Corrected resampled t-test with its interval, Wilcoxon, Bayesian correlated t-test with a
    region of practical equivalence, Holm over several ideas; across data sets with --datasets,
    or two finished runs (RUN_A RUN_B) on the holdout rows neither trained on."""
    from mlre.api.across import compare_datasets
    from mlre.api.compare import compare as run_compare
    from mlre.api.compare import compare_runs, to_dict
    from mlre.api.runs import looks_like_run_id
    from mlre.errors import InputError

    if data is None and datasets is None and candidates and all(map(looks_like_run_id, candidates)):
        if len(candidates) != 2:
            raise InputError("compare two runs at a time: mlre compare RUN_A RUN_B")
        pair = compare_runs(candidates[0], candidates[1], rope=rope, track=track)
        if as_json:
            out.print_json(json.dumps(pair.to_dict()))
            return
        c = pair.comparison
        style = VERDICT_STYLE[c.verdict]
        out.print(f"[{style}]{c.verdict}[/]: {escape(c.sentence)}", soft_wrap=True)
        if pair.run_id:
            out.print(f"[dim]recorded as MLflow run {pair.run_id}[/]")
        return
    if (data is None) == (datasets is None):
        raise InputError(
            "give either --data FILE or --datasets FOLDER (or two run ids: mlre compare RUN_A RUN_B)"
        )
    if datasets is not None:
        with fold_bar(not as_json) as step:
            across = compare_datasets(
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
            from mlre.evaluate.across import across_html

            output.write_text(across_html(across), encoding="utf-8")
        if as_json:
            out.print_json(json.dumps(across.to_dict() | {"run_id": across.run_id}))
        else:
            _render_across(across)
            if output is not None:
                out.print(f"critical-difference diagram: [bold]{escape(str(output))}[/]")
        return
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
    if as_json:
        out.print_json(json.dumps(to_dict(result) | {"run_id": result.run_id}))
    else:
        _render(result)
    if result.failures:
        raise typer.Exit(2)


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
    if across.run_id:
        out.print(f"[dim]recorded as MLflow run {across.run_id}[/]")


def _render(result: Any) -> None:
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
    if result.run_id:
        out.print(f"[dim]recorded as MLflow run {result.run_id}[/]")


@app.command()
@guarded
def ablate(
    run_id: Annotated[str, typer.Argument(help="The `mlre run` whose best model is ablated.")],
    groups: Annotated[
        str,
        typer.Option(help='Feature groups: "name=col1,col2;other=prefix_*" (shell patterns).'),
    ],
    data: Annotated[
        Path | None, typer.Option(help="The run's table, if it is no longer where it was.")
    ] = None,
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
    from mlre.api.ablate import ablate as run_ablate

    with fold_bar(not as_json) as step:
        result = run_ablate(
            run_id,
            groups,
            data=data,
            repeats=repeats,
            folds=folds,
            rope=rope,
            track=track,
            progress=step,
        )
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        return
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
    if result.run_id_recorded:
        out.print(f"[dim]recorded as MLflow run {result.run_id_recorded}[/]")


@app.command()
@guarded
def reproduce(
    run_id: Annotated[str, typer.Argument(help="The `mlre run` to replay.")],
    data: Annotated[
        Path | None, typer.Option(help="The run's table, if it is no longer where it was.")
    ] = None,
    test: Annotated[
        Path | None, typer.Option(help="The run's test table, if it had one elsewhere.")
    ] = None,
    track: Annotated[bool, typer.Option(help="Record the replay in MLflow.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Replay a run and say whether its scores match (exit 1 when they do not).

    The recorded model scores the re-derived holdout again and the model is rebuilt from its
    recipe; when scores differ, the data, versions and commit that differ are named."""
    from mlre.api.reproduce import reproduce as run_reproduce
    from mlre.cli import steps

    with steps(not as_json) as step:
        step(f"replaying run {run_id}")
        result = run_reproduce(run_id, data=data, test=test, track=track)
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
    else:
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
    if not result.reproduced:
        raise typer.Exit(1)


@app.command()
@guarded
def fairness(
    model: Annotated[str, typer.Argument(help="models:/NAME@ALIAS, models:/NAME/VERSION")],
    data: Annotated[Path, typer.Argument(help="A labelled table, e.g. the run's holdout.")],
    sensitive: Annotated[
        list[str], typer.Option(help="Sensitive columns (repeat, or comma-separated).")
    ],
    target: TargetOpt = None,
    spec: SpecOpt = None,
    proxies: Annotated[bool, typer.Option(help="Look for features standing in for them.")] = True,
    gate: Annotated[
        bool, typer.Option("--gate", help="Exit 1 when a disparity breaks its limit.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Is the model fair? Metrics and disparities between the groups of sensitive columns.

    Metrics per group with bootstrap 95% intervals, disparities against the spec's limits, and
    proxy features; small groups are shown, not judged."""
    from mlre.api.fairness import fairness as run_fairness
    from mlre.cli import _split, steps

    with steps(not as_json) as step:
        step("auditing the predictions by group")
        audit = run_fairness(
            model,
            data,
            sensitive=_split(sensitive) or [],
            target=target,
            spec=spec,
            proxies=proxies,
        )
    if as_json:
        out.print_json(json.dumps(audit.to_dict(), default=str))
    else:
        _render_fairness(audit)
    if gate and audit.breached:
        raise typer.Exit(1)


def _render_fairness(audit: Any) -> None:
    keys = (
        ["selection_rate", "true_positive_rate", "false_positive_rate", "precision", "accuracy"]
        if audit.task == "binary"
        else ["mean_prediction", "mean_error", "mae"]
    )
    for column in dict.fromkeys(g.column for g in audit.groups):
        table = Table(show_edge=False, title=f"by {column}", title_justify="left")
        table.add_column("group", style="bold")
        table.add_column("rows", justify="right")
        for k in keys:
            table.add_column(k.replace("_", " "), justify="right")
        for g in (g for g in audit.groups if g.column == column):
            cells = []
            for k in keys:
                low, high = g.intervals.get(k, (float("nan"), float("nan")))
                cells.append(f"{g.metrics[k]:.3f} [{low:.2f}, {high:.2f}]")
            name = escape(g.group) + (" [dim](small)[/]" if g.small else "")
            table.add_row(name, f"{g.count:,}", *cells)
        out.print(table)
    table = Table(show_edge=False, title="disparities", title_justify="left")
    for c in ("column", "measure", "value", "limit", ""):
        table.add_column(c, justify="right" if c in ("value", "limit") else "left")
    for d in audit.disparities:
        mark = "[bold red]breached[/]" if d.breached else "[green]within[/]" if d.limit else ""
        limit = "" if d.limit is None else f"{d.limit:g}"
        table.add_row(escape(d.column), d.name.replace("_", " "), f"{d.value:.3f}", limit, mark)
    out.print(table)
    for f in audit.findings:
        if f.severity.value != "info":
            out.print(f"[yellow]! {escape(f.message)}[/]", soft_wrap=True)


@app.command()
@guarded
def mitigate(
    run_id: Annotated[str, typer.Argument(help="The `mlre run` of a binary classifier.")],
    sensitive: Annotated[str, typer.Option(help="The sensitive column to mitigate for.")],
    constraint: Annotated[
        str, typer.Option(help="demographic_parity or equalized_odds.")
    ] = "demographic_parity",
    data: Annotated[
        Path | None, typer.Option(help="The run's table, if it is no longer where it was.")
    ] = None,
    reductions: Annotated[
        bool, typer.Option(help="Also refit the model under the constraint (slower).")
    ] = True,
    register: Annotated[
        str | None,
        typer.Option(help="Register this option (by its name) as a new version of the model."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the trade-off table and plot to this HTML file."
        ),
    ] = None,
    track: Annotated[bool, typer.Option(help="Record the trade-off in MLflow.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """The accuracy a smaller disparity costs, and a mitigated model to register.

    The run's model, thresholds per group, and the model refitted under the constraint, all
    scored on the same held-out rows."""
    from mlre.api.fairness import mitigate as run_mitigate
    from mlre.cli import steps

    with steps(not as_json) as step:
        step("fitting the mitigations")
        result = run_mitigate(
            run_id,
            sensitive=sensitive,
            constraint=constraint,
            data=data,
            reductions=reductions,
            register=register,
            track=track,
        )
    if output is not None:
        from mlre.fairness.mitigate import tradeoff_html

        output.write_text(
            tradeoff_html(result.options, result.front, constraint, sensitive), encoding="utf-8"
        )
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        return
    table = Table(show_edge=False, title=f"{constraint.replace('_', ' ')} by {sensitive}")
    for c in ("option", "accuracy", "balanced acc.", "DP difference", "EO difference", ""):
        table.add_column(c, justify="left" if c in ("option", "") else "right")
    for o in result.options:
        note = "Pareto" if o.name in result.front else ""
        if o.needs_sensitive:
            note += (", " if note else "") + f"needs {sensitive} to predict"
        table.add_row(
            escape(o.name),
            f"{o.accuracy:.4f}",
            f"{o.balanced_accuracy:.4f}",
            f"{o.demographic_parity_difference:.3f}",
            f"{o.equalized_odds_difference:.3f}",
            note,
        )
    out.print(table)
    if result.registered is not None:
        reg = result.registered
        out.print(
            f"registered [bold]{escape(register or '')}[/] as version {reg.version} of "
            f"{escape(reg.name)} (alias {reg.alias})"
        )
    if output is not None:
        out.print(f"trade-off table and plot: [bold]{escape(str(output))}[/]")
    if result.run_id_recorded:
        out.print(f"[dim]recorded as MLflow run {result.run_id_recorded}[/]")
