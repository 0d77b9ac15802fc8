"""A search job on one table: encode the target, split off the holdout, choose the folds, search,
and score the final model on the holdout it never saw."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlre.data.contract import DataContract
from mlre.data.split import (
    check_classes,
    check_enough_rows,
    outer_holdout,
    parse_times,
    time_folds,
    validation_split,
)
from mlre.errors import InputError
from mlre.evaluate.diagnostics import expected_range
from mlre.evaluate.metrics import get_metric, naive_prediction
from mlre.features.pipeline import FeaturePlan
from mlre.features.text import pipeline_terms
from mlre.findings import Finding, Severity
from mlre.models.families import n_workers
from mlre.models.final import MlreModel
from mlre.search.clock import share_of_time_left
from mlre.search.engine import run_search
from mlre.search.executor import Executor
from mlre.search.folds import folds_for, search_sample
from mlre.search.limits import Limits, trim_to_fit
from mlre.search.notes import gap_findings, worker_findings
from mlre.search.refit import StoredModel
from mlre.search.result import OnTrial, SearchResult
from mlre.search.schedule import validated_rows
from mlre.search.spill import release_memory
from mlre.search.trial import TrialData, fit_fold
from mlre.spec import METRICS, Spec, Task

log = logging.getLogger(__name__)

#: The search fits at most this many rows; the chosen models are refitted on all when time allows.
SEARCH_ROWS = 100_000


@dataclass
class Target:
    """The encoded target: integer classes (classification) or floats (regression)."""

    y: np.ndarray
    classes: np.ndarray | None

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for regression)."""
        return 0 if self.classes is None else len(self.classes)


def encode_target(y: pd.Series, task: Task, classes: np.ndarray | None = None) -> Target:
    """Encode labels as 0..k-1 in sorted order (or with ``classes``); regression as floats."""
    if task == "regression":
        return Target(pd.to_numeric(y, errors="coerce").to_numpy(dtype=float), None)
    labels = y.to_numpy()
    if classes is None:
        classes = np.array(sorted(pd.unique(labels), key=lambda v: (str(type(v)), v)), dtype=object)
    lookup = {c: i for i, c in enumerate(classes)}
    codes = np.array([lookup.get(v, -1) for v in labels])
    return Target(codes, classes)


@dataclass
class Evaluation:
    """What the diagnostics need after a job: both parts of the split and the holdout predictions."""

    X_train: pd.DataFrame
    y_train: np.ndarray
    X_hold: pd.DataFrame
    y_hold: np.ndarray
    pred_hold: np.ndarray
    classes: np.ndarray | None
    plan: FeaturePlan
    hold_frame: pd.DataFrame | None = None  # every column of the holdout rows (sensitive ones too)


@dataclass
class JobResult:
    """What a search job produced."""

    model: MlreModel
    search: SearchResult
    holdout: dict[str, float]
    baseline: dict[str, float]
    search_score: float
    holdout_score: float
    scheme: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    test_rows: int = 0
    train_rows: int = 0
    evaluation: Evaluation | None = None
    # the model the holdout scored (kept on disk), when the registered one (``model``) is its
    # recipe refitted on every labelled row; and what that refit was
    scored_model: StoredModel | None = None
    refit: dict[str, Any] | None = None
    # where the holdout score was expected to fall, from the search's estimate and the noise
    # of both sets of rows (95%)
    search_interval: tuple[float, float] | None = None


def holdout_scores(task: Task, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Every metric that fits the task, on the holdout."""
    out = {}
    for name, (tasks, _) in METRICS.items():
        if task in tasks:
            try:
                value = get_metric(name)(y, pred)
            except ValueError:  # e.g. ROC AUC of a holdout holding a single class
                continue
            if np.isfinite(value):
                out[name] = value
    return out


def feature_plan(contract: DataContract, spec: Spec) -> FeaturePlan:
    """The columns a run's models read: the contract's features less declared identifiers, the
    group column and, when asked, the sensitive columns."""
    exclude = [*spec.id_columns, *([spec.group_column] if spec.group_column else [])]
    if spec.exclude_sensitive:
        exclude += spec.sensitive
    dates = [spec.time_column] if spec.time_column else []
    plan = FeaturePlan.from_contract(contract, exclude=exclude, dates=dates)
    plan.country, plan.subdivision = spec.calendar.country, spec.calendar.subdivision
    return plan


@dataclass
class Prepared:
    """A run's data as the search sees it: the outer split, the searched rows and their folds."""

    train: pd.DataFrame
    hold: pd.DataFrame
    y_train: np.ndarray
    y_hold: np.ndarray
    method: str
    plan: FeaturePlan
    rows: np.ndarray
    scheme: str
    data: TrialData
    classes: np.ndarray | None
    # positions of the holdout among the labelled rows (None: the holdout is a test table)
    hold_rows: np.ndarray | None
    labelled: pd.DataFrame
    # rows between the training part and a time-ordered holdout, left out of both (``gap``)
    skipped: pd.DataFrame | None = None
    y_skipped: np.ndarray | None = None
    # whether the training part's rows are in time order (every split then goes forward)
    ordered: bool = False

    @property
    def holdout_joins(self) -> bool:
        """Whether a final refit learns from the holdout too: it was cut from the labelled rows
        (a given test table stays out)."""
        return self.hold_rows is not None

    @property
    def every_row_count(self) -> int:
        """How many rows :meth:`every_row` gives."""
        skipped = 0 if self.skipped is None else len(self.skipped)
        return len(self.train) + skipped + (len(self.hold) if self.holdout_joins else 0)

    def every_row(self) -> tuple[pd.DataFrame, np.ndarray]:
        """The rows a final refit learns from: the training part, the rows of a time gap and a
        holdout cut from the labelled rows (a given test table stays out), in that order (time
        order, when the rows are events in time), features and encoded target."""
        parts, ys = [self.train[self.plan.columns]], [self.y_train]
        if self.skipped is not None and self.y_skipped is not None and len(self.skipped):
            parts.append(self.skipped[self.plan.columns])
            ys.append(self.y_skipped)
        if self.holdout_joins:
            parts.append(self.hold[self.plan.columns])
            ys.append(self.y_hold)
        if len(parts) == 1:
            return parts[0], ys[0]
        return pd.concat(parts, ignore_index=True), np.concatenate(ys)

    def level_one(self, scored: MlreModel) -> np.ndarray | None:
        """For a stacked ``scored`` model, the first-layer blend a refit's second layer reads
        beside :meth:`every_row`: out of fold on the training part, and the scored model's own
        prediction on a holdout that joins (rows it never saw either)."""
        if scored.level_one is None:
            return None
        oof = scored.__dict__.get("level_one_oof")
        if oof is None:
            raise RuntimeError("a stacked model came without its first layer's predictions")
        if not self.holdout_joins:
            return np.asarray(oof)
        return np.concatenate([oof, scored.level_one_blend(self.hold[self.plan.columns])])


def prepare(
    df: pd.DataFrame,
    spec: Spec,
    task: Task,
    contract: DataContract,
    test: pd.DataFrame | None,
    search_rows: int = SEARCH_ROWS,
) -> Prepared:
    """Split ``df`` as a run does (outer holdout or the given test table), sample the rows the
    search fits and cut them into folds: deterministic for a spec's seed, so a run can be
    replayed."""
    target = spec.target
    assert target is not None
    metric = get_metric(spec.resolved_metric(task))
    labelled = df[df[target].notna()]
    if spec.time_column is not None:
        # rows without a readable time cannot be placed in time: the audit reports them as an
        # error, and a forced run goes on without them
        labelled = labelled[parse_times(labelled[spec.time_column]).notna().to_numpy()]
    labelled = labelled.reset_index(drop=True)
    enc = encode_target(labelled[target], task)
    if test is not None:
        test = test[test[target].notna()].reset_index(drop=True) if target in test.columns else None
    given = test is not None and len(test) > 0
    check_enough_rows(
        enc.y, enc.classes, fraction=None if given else spec.holdout, binary=task == "binary"
    )
    if test is None or len(test) == 0:
        split = outer_holdout(
            labelled,
            enc.y,
            task=task,
            fraction=spec.holdout,
            seed=spec.seed,
            time_column=spec.time_column,
            group_column=spec.group_column,
            gap=spec.gap,
        )
        train, hold = (
            labelled.iloc[split.train].reset_index(drop=True),
            labelled.iloc[split.test].reset_index(drop=True),
        )
        y_train, y_hold = enc.y[split.train], enc.y[split.test]
        method = split.method
        if spec.gap:
            method += f", {spec.gap:,} row(s) skipped before it"
        hold_rows = np.asarray(split.test)
        skipped = labelled.iloc[split.skipped].reset_index(drop=True)
        y_skipped = enc.y[split.skipped]
    else:
        train, hold, y_train, y_hold = _given_test(labelled, enc, test, spec, task)
        method, hold_rows, skipped, y_skipped = "the given test table", None, None, None
    if enc.classes is not None:  # classification
        check_classes(y_train, y_hold, enc.classes)
    plan = _usable_plan(contract, spec)
    rows = search_sample(y_train, task, search_rows, spec.seed)
    X_search, y_search = train[plan.columns].iloc[rows].reset_index(drop=True), y_train[rows]
    groups = train[spec.group_column].astype(str).to_numpy()[rows] if spec.group_column else None
    times = None
    if spec.time_column is not None:
        times = parse_times(train[spec.time_column]).to_numpy()[rows]
    folds, scheme = folds_for(y_search, task, spec.seed, groups, times=times, gap=spec.gap)
    data = TrialData(X_search, y_search, folds, task, enc.n_classes, plan, metric, spec.seed)
    return Prepared(
        train, hold, y_train, y_hold, method, plan, rows, scheme, data, enc.classes, hold_rows,
        labelled, skipped, y_skipped, ordered=times is not None,
    )  # fmt: skip


def _given_test(
    labelled: pd.DataFrame, enc: Target, test: pd.DataFrame, spec: Spec, task: Task
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """The training part and holdout when the user gave a test table: every labelled row
    trains (in time order with a time column: the search's folds still go forward)."""
    target = spec.target
    assert target is not None
    train, y_train = labelled, enc.y
    y_hold = encode_target(test[target], task, enc.classes).y
    if task != "regression" and (y_hold < 0).any():
        unseen = sorted({str(v) for v in test[target][y_hold < 0]})[:5]
        raise InputError(
            f"the test data has label(s) never seen in training: {', '.join(unseen)}",
            hint="a model cannot predict a class it never saw",
        )
    if spec.time_column is not None:
        order = np.argsort(parse_times(train[spec.time_column]).to_numpy(), kind="stable")
        train, y_train = train.iloc[order].reset_index(drop=True), y_train[order]
    return train, test, y_train, y_hold


def _usable_plan(contract: DataContract, spec: Spec) -> FeaturePlan:
    """The run's feature plan; an InputError naming every column when none can feed a model."""
    plan = feature_plan(contract, spec)
    if not plan.columns:
        left = ", ".join(f"{c} ({why})" for c, why in plan.ignored.items()) or "none"
        raise InputError(
            f"no column can feed a model: every feature was left out ({left})",
            hint="identifiers are never features; add columns of numbers, categories, dates or "
            "text, or declare what a column is (id_columns, drop)",
        )
    return plan


def run_job(
    df: pd.DataFrame,
    spec: Spec,
    task: Task,
    contract: DataContract,
    *,
    test: pd.DataFrame | None,
    deadline: float,
    reserve: float,
    on_trial: OnTrial | None = None,
    families: list[str] | None = None,
    search_rows: int = SEARCH_ROWS,
    executor: Executor | None = None,
) -> JobResult:
    """Split, search until ``deadline - reserve``, then score the final model on the holdout.

    A training part over ``search_rows`` rows is searched on a random sample of that many rows;
    the chosen models are then refitted on every training row if the time left allows it.
    """
    prep = prepare(df, spec, task, contract, test, search_rows)
    train, hold, y_train = prep.train, prep.hold, prep.y_train
    plan, rows, scheme, data = prep.plan, prep.rows, prep.scheme, prep.data
    metric, enc_classes, n_classes = data.metric, prep.classes, data.n_classes
    interpretable = spec.constraints.interpretable
    # a search on a sample, or for one readable model, leaves 30% of the time for refitting the
    # chosen models on every row; so does one in time order, whose fold models learned from
    # older rows only (the holdout scores a model of the whole training part, the latest rows
    # included)
    refit_first = len(rows) < len(train) or interpretable or prep.ordered
    budget = share_of_time_left(deadline - reserve, 0.7 if refit_first else 1.0)
    limits = Limits.of(
        spec.constraints, task=task, classes=enc_classes, contract=contract,
        metric=metric.name, rows=hold[plan.columns], bags=1 if spec.refit or refit_first else None,
    )  # fmt: skip
    search, model = run_search(
        data,
        budget,
        families=families,
        on_trial=on_trial,
        classes=enc_classes,
        contract=contract,
        interpretable=interpretable,
        predict_rows=len(hold),
        refit_rows=prep.every_row_count if spec.refit else 0,
        executor=executor,
        stack=not refit_first,
        limits=limits,
    )
    if len(rows) < len(train):
        scheme += f" on a {len(rows):,}-row sample of {len(train):,}"
    # an interpretable model is one readable model, not an average of fold models: refit it
    if refit_first:
        full = TrialData(train[plan.columns], y_train, [], task, n_classes, plan, metric, spec.seed)
        if refit_on_all(model, search, full, len(rows), deadline - reserve, prep.ordered):
            scheme += ", then refitted on all training rows"
    result = _scored(prep, model, search, scheme, spec.seed)
    if plan.texts:  # what the text says, while the scored model's pipelines are at hand
        terms = pipeline_terms([p for m in model.members for p in m.pipelines])
        for found in terms.values():  # the class as a person names it, not its code
            if found["towards"] is not None and prep.classes is not None:
                found["towards"] = str(prep.classes[found["towards"]])
        result.scheme["text_terms"] = terms
    result.findings.extend(
        gap_findings(result.search_score, result.holdout_score, result.search_interval, metric.name)
    )
    result.findings.extend(worker_findings(search.trials))
    if spec.refit:  # the search kept the refit's time back; half the reserve absorbs a slip
        _serve_refit(result, prep, deadline - reserve / 2)
    if limits is not None:
        result.findings.extend(_within_limits(result, limits, hold[plan.columns]))
    if prep.ordered:
        result.findings.extend(_shuffled_findings(result, prep, deadline - reserve))
    return result


def _within_limits(result: JobResult, limits: Limits, rows: pd.DataFrame) -> list[Finding]:
    """The served model measured against the spec's limits on holdout rows (kept in the
    scheme), trimmed when the search's estimate was off; a finding says what was trimmed."""
    latency, size, trimmed = trim_to_fit(result.model, limits, rows)
    result.scheme["served"] = {"latency_ms_p50": round(latency, 4), "size_mb": round(size, 3)}
    if not trimmed:
        return []
    return [
        Finding(
            severity=Severity.WARNING,
            check="trimmed_to_limits",
            message=f"the served model was over its limits once measured and {trimmed} "
            f"({latency:.2f} ms per row, {size:.2f} MB now); the holdout score is the fuller "
            "model's",
            evidence=result.scheme["served"],
            fix="raise the limits, or accept a score measured on a slightly larger model",
        )
    ]


def _shuffled_findings(result: JobResult, prep: Prepared, deadline: float) -> list[Finding]:
    """What shuffled folds would have estimated for the best configuration, beside the forward
    estimate (kept in the scheme); a finding when the two differ beyond their noise."""
    from mlre.search.forward import shuffled_check

    check = shuffled_check(prep.data, result.search, deadline)
    metric = prep.data.metric.name
    if check is None:
        return [
            Finding(
                severity=Severity.INFO,
                check="shuffled_estimate_skipped",
                message="no time was left to estimate the best configuration on shuffled folds "
                "beside the forward estimate",
                fix="give the run a larger time budget to see how much shuffled folds flatter it",
            )
        ]
    result.scheme["shuffled"] = check
    if not check["beyond_noise"]:
        return []
    verb = "flatter" if check["flattery"] > 0 else "understate"
    return [
        Finding(
            severity=Severity.INFO,
            check="shuffled_estimate",
            message=f"random folds would {verb} the {metric} by {abs(check['flattery']):.0%}: "
            f"{check['shuffled']:.4f} on shuffled folds against {check['forward']:.4f} forward "
            f"in time ({check['family']}, noise ±{check['noise']:.4f})",
            evidence=check,
            fix="trust the forward estimate: the model will always predict rows later than "
            "those it learned from",
        )
    ]


def _scored(
    prep: Prepared, model: MlreModel, search: SearchResult, scheme: str, seed: int
) -> JobResult:
    """The job's result: ``model`` scored on the holdout, beside the naive baseline."""
    train, hold, y_train, y_hold = prep.train, prep.hold, prep.y_train, prep.y_hold
    data, plan = prep.data, prep.plan
    task, metric, n_classes = data.task, data.metric, data.n_classes
    from mlre.explain.shapley import background_sample

    # a few training rows travel with the model: explanations average hidden columns over them
    model.background = background_sample(train[plan.columns], seed=seed)
    X_hold = hold[plan.columns]
    pred = model.predict_proba(X_hold) if task != "regression" else model.predict(X_hold)
    scores = holdout_scores(task, y_hold, pred)
    naive = naive_prediction(task, y_train, len(y_hold), n_classes)
    baseline = holdout_scores(task, y_hold, naive)
    estimate = metric.to_score(search.loss)
    interval = None
    if search.oof is not None:
        rows = validated_rows(data)
        interval = expected_range(metric, estimate, (data.y[rows], search.oof[rows]),
                                  (y_hold, pred), seed=seed)  # fmt: skip
    return JobResult(
        model=model,
        search=search,
        holdout=scores,
        baseline=baseline,
        search_score=estimate,
        holdout_score=scores[metric.name],
        search_interval=interval,
        scheme={
            "holdout": prep.method,
            "holdout_rows": len(hold),
            "search": scheme,
            "features": plan.columns,
            "ignored": plan.ignored,
            "executor": search.executor,
        },
        test_rows=len(hold),
        train_rows=len(train),
        evaluation=Evaluation(
            train[plan.columns], y_train, X_hold, y_hold, pred, prep.classes, plan, hold
        ),
    )


def _serve_refit(result: JobResult, prep: Prepared, deadline: float) -> None:
    """Refit the scored recipe on every labelled row (the training part and the holdout; a
    given test table stays out) and make it the job's model, when the time left allows."""
    from mlre.search.refit import MARGIN, plan_refit, projected_seconds, refit

    scored, data, search = result.model, prep.data, result.search
    X, y = prep.every_row()
    fold_rows = float(np.mean([len(tr) for tr, _ in data.folds]))
    by_id = {t.id: t for t in search.trials}
    trained, seconds = [], []
    for member, trial_id in zip(scored.members, search.ensemble, strict=True):
        trial = by_id[trial_id]
        per_fold = trial.fit_seconds / max(1, len(trial.fold_losses))
        # fold models saw a fold's rows; a model already refitted saw 90% of the training part
        rows = fold_rows if len(member.pipelines) == len(data.folds) else 0.9 * len(prep.train)
        trained.append(rows)
        seconds.append(per_fold * rows / max(1.0, fold_rows))
    members = plan_refit(scored, len(y), trained, seconds)
    needs = projected_seconds([m.seconds for m in members])
    # the search kept ``needs`` back, margin included; the refit goes ahead on the expectation
    if time.monotonic() + needs / MARGIN > deadline:
        result.findings.append(_refit_skipped(len(y), needs))
        return
    started = time.monotonic()
    level_one = prep.level_one(scored)
    # the scored model waits on disk: with it in memory beside the refit, a run's peak grew by
    # the size of both
    scored_members = scored.recipe()
    result.scored_model = StoredModel(scored)
    scored.drop_pipelines()
    for trial in search.trials:
        trial.pipelines = None
    release_memory()  # back to the system, for the refit's threads to take
    served = refit(scored, members, X, y, plan=prep.plan, task=data.task, seed=data.seed,
                   deadline=deadline, level_one=level_one)  # fmt: skip
    X_hold = prep.hold[prep.plan.columns]
    pred = served.predict_proba(X_hold) if data.task != "regression" else served.predict(X_hold)
    result.model = served
    result.refit = {
        "rows": len(y),
        "seconds": round(time.monotonic() - started, 3),
        "includes_holdout": prep.holdout_joins,
        "members": [m.to_dict() for m in members],
        "scored_members": scored_members,  # the recipe the holdout scored
        # the refitted model on the holdout: trained on those rows when they joined the refit,
        # so a fingerprint for replays, not a score
        "holdout": holdout_scores(data.task, prep.y_hold, pred),
    }
    where = "training and holdout rows" if prep.holdout_joins else "training rows"
    result.scheme["model"] = (
        f"the recipe refitted on all {len(y):,} labelled {where}; the holdout score is the "
        "recipe's, measured before the refit"
    )


def _refit_skipped(rows: int, needs: float) -> Finding:
    return Finding(
        severity=Severity.WARNING,
        check="refit_skipped",
        message=f"no time left to refit the model on all {rows:,} labelled rows (about "
        f"{needs:.0f}s needed): the registered model is the one the holdout scored, fitted "
        "on the training part only",
        evidence={"rows": rows, "seconds_needed": round(needs, 1)},
        fix="give a larger time budget, or set refit: false to choose this knowingly",
    )


def refit_on_all(
    model: MlreModel,
    search: SearchResult,
    full: TrialData,
    searched_rows: int,
    deadline: float,
    ordered: bool = False,
) -> bool:
    """Refit each ensemble member on every training row, if the projected time fits.

    Boosted trees keep a 10% validation part for early stopping (the latest rows, when the rows
    are ``ordered`` in time). Returns whether it refitted.
    """
    from mlre.search.executor import LocalExecutor

    by_id = {t.id: t for t in search.trials}
    per_fold = [by_id[i].fit_seconds / max(1, len(by_id[i].fold_losses)) for i in search.ensemble]
    workers = max(1, min(n_workers(), len(per_fold)))
    projected = 1.2 * sum(per_fold) / workers * len(full.y) / max(1, searched_rows)
    if time.monotonic() + projected > deadline:
        log.info("no time to refit on all %d rows (needs about %.0fs)", len(full.y), projected)
        return False
    full.folds = validation_split(full.y, task=full.task, fraction=0.1, seed=full.seed)
    if ordered:
        with contextlib.suppress(InputError):  # the latest rows hold a single class
            n = len(full.y)
            full.folds = time_folds(np.arange(n), full.y, task=full.task, k=1, last_share=0.1)
    pool = LocalExecutor(workers)
    try:
        jobs = [
            pool.submit(fit_fold, m.family, m.params, full, 0, deadline=deadline)
            for m in model.members
        ]
        outs = [pool.result(j) for j in jobs]
    finally:
        pool.close()
    for member, (pipe, _, _, _) in zip(model.members, outs, strict=True):
        member.pipelines = [pipe]
    return True
