"""``mlre compare``: does an idea really help? Candidates on the same repeated folds, tested;
or two finished runs on the holdout rows neither trained on."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlre.api.recorded import recorded_task, run_inputs, scored_model
from mlre.errors import InputError, SpecError
from mlre.spec import Spec, Task

if TYPE_CHECKING:
    from mlre.evaluate.compare import Comparison

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def _candidates(names: list[str]) -> list[Any]:
    """Families by name and idea files by path; a feature idea runs with the first family."""
    from mlre.evaluate.ideas import IdeaError, failed_candidate, family_candidate, load_idea

    if len(names) < 2:
        raise InputError(
            "compare needs at least two candidates: a baseline and an idea",
            hint="e.g. `mlre compare --data d.csv --target y lightgbm ideas/my_idea.py`",
        )
    first_family = next((n for n in names if not _is_file(n)), None)
    out, seen = [], set()
    for name in names:
        if _is_file(name):
            try:
                cand = load_idea(name, first_family)
            except IdeaError as err:  # reported with the results; the others still run
                cand = failed_candidate(name, err)
        else:
            cand = family_candidate(name)
        if cand.name in seen:
            raise InputError(f"{cand.name} is named twice; each candidate once, please")
        seen.add(cand.name)
        out.append(cand)
    return out


def _is_file(name: str) -> bool:
    return name.endswith(".py") or "/" in name or Path(name).is_file()


def compare(
    data: str | Path | pd.DataFrame,
    candidates: list[str],
    *,
    target: str | None = None,
    spec: Spec | str | Path | None = None,
    metric: str | None = None,
    repeats: int | None = None,
    folds: int | None = None,
    rope: float | None = None,
    seed: int | None = None,
    track: bool = True,
    progress: Progress | None = None,
    ray: str | None = None,
) -> Any:
    """Score ``candidates`` (family names or idea files; the first is the baseline) on the same
    repeated k-fold splits of ``data`` and test each against the baseline; with ``ray``
    (``"auto"`` or a cluster address) every candidate's fit on every split is a Ray task.

    Returns a ``CompareResult``: every candidate's fold scores, a ``Comparison`` per idea (the
    corrected resampled t-test with its 95% interval, Wilcoxon, the Bayesian correlated t-test
    with a region of practical equivalence, Holm-adjusted when there are several ideas) and a
    verdict in words. Ideas that fail are reported with the reason; the others are compared.
    """
    from mlre.api.inputs import contract_of, load_inputs
    from mlre.evaluate.metrics import get_metric
    from mlre.search.job import feature_plan

    cands = _candidates(candidates)
    inputs = load_inputs(
        data,
        test=None,
        sql=None,
        db=None,
        spec=spec,
        encoding=None,
        delimiter=None,
        step=lambda _: None,
        overrides={"target": target, "metric": metric, "seed": seed},
    )
    the_spec = inputs.spec
    if the_spec.target is None or inputs.task is None:
        raise SpecError("mlre compare needs a target", hint="pass --target COLUMN")
    contract = contract_of(inputs)
    with comparison_executor(ray) as executor:
        result = paired_comparison(
            inputs.df,
            the_spec,
            inputs.task,
            contract,
            feature_plan(contract, the_spec),
            cands,
            get_metric(the_spec.resolved_metric(inputs.task)),
            repeats=repeats,
            folds=folds,
            rope=rope,
            progress=progress,
            executor=executor,
        )
    result.data = str(data) if not isinstance(data, pd.DataFrame) else "a DataFrame"
    result.run_id = (
        record_comparison(the_spec.project_name, result, inputs.table.sha256) if track else None
    )
    return result


@contextmanager
def comparison_executor(ray: str | None) -> Iterator[Any]:
    """Ray's executor when an address is given (or in ``MLRE_RAY_ADDRESS``); else None: the
    candidates are fitted one after another here, as idea files may not be thread-safe."""
    from mlre.search.executor import executor_for, ray_address

    address = ray_address(ray)
    if address is None:
        yield None
        return
    with executor_for(address) as executor:
        yield executor


def paired_comparison(
    df: pd.DataFrame,
    spec: Spec,
    task: Task,
    contract: Any,
    plan: Any,
    candidates: list[Any],
    metric: Any,
    *,
    repeats: int | None,
    folds: int | None,
    rope: float | None,
    progress: Progress | None,
    executor: Any = None,
) -> Any:
    """``candidates`` on the same repeated folds of the labelled rows of ``df``, each tested
    against the first (the scheme by the table's size unless given)."""
    from mlre.evaluate.compare import compare_scores, default_scheme, evaluate_candidates
    from mlre.search.job import encode_target

    target = spec.target
    df = df.dropna(subset=[target]).reset_index(drop=True)
    default_repeats, default_folds = default_scheme(len(df))
    repeats, folds = repeats or default_repeats, folds or default_folds
    if repeats < 1 or folds < 2:
        raise InputError("compare needs at least 1 repetition of at least 2 folds")
    y = encode_target(df[target], task)
    result = evaluate_candidates(
        df.drop(columns=[target]),
        y.y,
        task=task,
        n_classes=y.n_classes,
        contract=contract,
        plan=plan,
        candidates=candidates,
        metric=metric,
        repeats=repeats,
        folds=folds,
        seed=spec.seed,
        progress=progress,
        executor=executor,
    )
    compare_scores(result, rope=rope)
    return result


def record_comparison(project: str, result: Any, data_sha256: str | None) -> str:
    """A parent run for the comparison, a child per candidate with its fold scores."""
    from mlre.track import tracked_run
    from mlre.track.store import experiment_of, log_child_run

    with tracked_run(project, "compare", {"mlre.kind": "compare"}) as parent:
        parent.log_params(
            {
                "metric": result.metric,
                "repeats": result.repeats,
                "folds": result.folds,
                "candidates": ", ".join(c.name for c in result.candidates),
                "baseline": result.baseline,
                "data_sha256": data_sha256 or "",
            }
        )
        exp = experiment_of(parent)
        verdicts = {c.candidate: c.verdict for c in result.comparisons}
        for c in result.candidates:
            metrics = {} if not c.ok else {
                f"mean_{result.metric}": float(c.scores.mean()),
                f"sd_{result.metric}": float(c.scores.std(ddof=1)),
            }  # fmt: skip
            log_child_run(
                parent,
                exp,
                c.name,
                params={"source": c.source, "kind": c.kind},
                metrics=metrics,
                tags={
                    "mlre.kind": "compare-candidate",
                    "mlre.verdict": verdicts.get(c.name, "baseline" if c.ok else "failed"),
                    **({"mlre.error": c.error[:4000]} if c.error else {}),
                },
                steps={f"fold_{result.metric}": list(c.scores)} if c.ok else {},
                status="FINISHED" if c.ok else "FAILED",
            )
        parent.log_json(to_dict(result), "compare/compare.json")
        parent.log_text(markdown(result), "compare/compare.md")
        return parent.run_id


def to_dict(result: Any) -> dict[str, Any]:
    """The comparison, JSON-ready."""
    return {
        "metric": result.metric,
        "greater_is_better": result.greater_is_better,
        "repeats": result.repeats,
        "folds": result.folds,
        "rows": result.rows,
        "baseline": result.baseline,
        "candidates": [
            {**c.summary(), "scores": [float(v) for v in c.scores] if c.ok else None}
            for c in result.candidates
        ],
        "comparisons": [dict(c.__dict__) for c in result.comparisons],
        "findings": [f.model_dump(mode="json") for f in result.findings()],
    }


def markdown(result: Any) -> str:
    """The comparison as a Markdown section: scores, tests, verdicts."""
    lines = [
        f"## Does the idea help? ({result.metric}, {result.repeats}x{result.folds}-fold "
        f"cross-validation, {result.rows:,} rows)",
        "",
        f"| candidate | mean {result.metric} | sd | verdict against {result.baseline} |",
        "|---|---:|---:|---|",
    ]
    verdicts = {c.candidate: c.verdict for c in result.comparisons}
    for c in result.candidates:
        if c.ok:
            lines.append(
                f"| {c.name} | {c.scores.mean():.4f} | {c.scores.std(ddof=1):.4f} | "
                f"{verdicts.get(c.name, 'baseline' if c.name == result.baseline else '')} |"
            )
        else:
            lines.append(f"| {c.name} | failed | | {c.error} |")
    lines.append("")
    for c in result.comparisons:
        lines.append(f"- {c.sentence}")
    return "\n".join(lines) + "\n"


class RunsComparison:
    """Two finished runs on the holdout rows neither of them trained on."""

    def __init__(self, run_a: str, run_b: str, rows: int, comparison: Comparison) -> None:
        self.run_a, self.run_b, self.rows, self.comparison = run_a, run_b, rows, comparison
        self.run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_a": self.run_a,
            "run_b": self.run_b,
            "rows": self.rows,
            "comparison": dict(self.comparison.__dict__),
            "run_id": self.run_id,
        }


def compare_runs(
    run_a: str,
    run_b: str,
    *,
    data: str | Path | pd.DataFrame | None = None,
    rope: float | None = None,
    samples: int = 2_000,
    track: bool = True,
) -> RunsComparison:
    """Run ``run_b``'s model against ``run_a``'s on the rows both kept out of training (the
    intersection of their holdouts, re-derived from the data and each run's seed): a paired
    bootstrap of the rows gives the interval of the difference, a p-value and the probability
    that B is practically better. Both runs must have learnt from the same table."""
    from mlre.api.inputs import contract_of, load_run_inputs
    from mlre.evaluate.compare import default_rope, paired_bootstrap
    from mlre.evaluate.metrics import get_metric
    from mlre.search.job import encode_target

    (ra, spec_a, source), (rb, spec_b) = _pairable_runs(run_a, run_b, data)
    inputs = load_run_inputs(source, spec_a)
    task = recorded_task(ra, inputs)
    if (rb.data.params.get("task") or task) != task:
        raise InputError("the runs solve different tasks")
    metric = get_metric(ra.data.params.get("metric") or spec_a.resolved_metric(task))
    common, labelled = _common_holdout(inputs.df, (spec_a, spec_b), task, contract_of(inputs))
    y = encode_target(labelled[spec_a.target], task).y[common]
    preds = _predictions((ra, rb), labelled.iloc[common], task)
    base_scores = np.array([metric(y, preds[0])])
    comparison = paired_bootstrap(
        y,
        preds[0],
        preds[1],
        metric,
        rope=rope if rope is not None else default_rope(base_scores, metric.name),
        samples=samples,
        seed=spec_a.seed,
        names=(f"run {run_a[:8]}", f"run {run_b[:8]}"),
    )
    result = RunsComparison(run_a, run_b, len(common), comparison)
    if track:
        from mlre.track import tracked_run

        with tracked_run(spec_a.project_name, "compare-runs", {"mlre.kind": "compare"}) as parent:
            parent.set_tags(
                {"mlre.run_a": run_a, "mlre.run_b": run_b, "mlre.verdict": comparison.verdict}
            )
            parent.log_json(result.to_dict(), "compare/compare_runs.json")
            result.run_id = parent.run_id
    return result


def _pairable_runs(
    run_a: str, run_b: str, data: str | Path | pd.DataFrame | None
) -> tuple[tuple[Any, Spec, Any], tuple[Any, Spec]]:
    """Two finished runs and their specs, with the table A learnt from, checked to have learnt
    from the same table and to predict the same target, both scored on a holdout of it."""
    records = [run_inputs(r, data) for r in (run_a, run_b)]
    (ra, spec_a, (_, source)), (rb, spec_b, _) = records
    sha_a, sha_b = (r.data.tags.get("mlre.data_sha256") for r in (ra, rb))
    if sha_a and sha_b and sha_a != sha_b:
        raise InputError(
            f"runs {run_a} and {run_b} learnt from different tables; their scores cannot be paired",
            hint="compare ideas on one table with `mlre compare --data`",
        )
    if spec_a.target != spec_b.target:
        raise InputError(
            f"the runs predict different targets ({spec_a.target} and {spec_b.target})"
        )
    if any(r.data.tags.get("mlre.test_source") for r in (ra, rb)):
        raise InputError("a run scored on a separate test table cannot be paired this way")
    return (ra, spec_a, source), (rb, spec_b)


def _common_holdout(
    df: pd.DataFrame, specs: tuple[Spec, Spec], task: Task, contract: Any
) -> tuple[np.ndarray, pd.DataFrame]:
    """The rows both runs held out (each run's holdout re-derived from its spec and seed), as
    positions in the labelled rows, and the labelled rows."""
    from mlre.search.job import prepare

    holds = []
    for spec in specs:
        prepared = prepare(df, spec, task, contract, None)
        if prepared.hold_rows is None:  # scored on a test table, which _pairable_runs refuses
            raise InputError("a run scored on a separate test table cannot be paired this way")
        holds.append(prepared.hold_rows)
    common = np.intersect1d(holds[0], holds[1])
    if len(common) < 30:
        raise InputError(
            f"the runs' holdouts share only {len(common)} rows; too few to compare them",
            hint="runs with the same seed and holdout share every holdout row",
        )
    return common, prepared.labelled


def _predictions(runs: tuple[Any, Any], rows: pd.DataFrame, task: Task) -> list[np.ndarray]:
    """What the model each run's holdout scored answers for ``rows`` (probabilities or values):
    a registered model refitted on every labelled row learnt from them."""
    preds = []
    for r in runs:
        model = scored_model(r)
        if model is None:
            raise InputError(f"run {r.info.run_id} registered no model")
        preds.append(
            np.asarray(model.predict_proba(rows) if task != "regression" else model.predict(rows))
        )
    return preds
