"""Paired comparison of candidates on the same repeated folds, and the verdict in words.

Every candidate is fitted on the same training rows and scored on the same test rows of each
repetition of k-fold cross-validation, so their scores pair up fold by fold; the statistics of
``mlre.evaluate.stats`` then say whether a difference is more than the noise of resampling.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlre.data.contract import DataContract
from mlre.evaluate.ideas import Candidate, FoldData, IdeaError
from mlre.evaluate.metrics import Metric
from mlre.evaluate.stats import (
    bayes_correlated_ttest,
    corrected_ttest,
    holm,
    wilcoxon_p,
)
from mlre.features.pipeline import FeaturePlan
from mlre.findings import Finding, Severity
from mlre.spec import Task

log = logging.getLogger(__name__)

#: Repetitions x folds when none are asked for: 10x10 on tables of up to 10,000 rows (the
#: resolution the corrected t-test needs), 5x2 above, where each fit is costly.
SMALL_TABLE = 10_000


def default_scheme(rows: int) -> tuple[int, int]:
    """(repeats, folds) for a table of ``rows`` rows."""
    return (10, 10) if rows <= SMALL_TABLE else (5, 2)


@dataclass
class CandidateScores:
    """A candidate's score on every (repeat, fold), in the order of the folds."""

    name: str
    source: str
    kind: str
    scores: np.ndarray
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "source": self.source, "kind": self.kind}
        if self.ok:
            out |= {"mean": float(self.scores.mean()), "sd": float(self.scores.std(ddof=1))}
        else:
            out["error"] = self.error
        return out


@dataclass
class Comparison:
    """A candidate against the baseline: the tests and the verdict."""

    baseline: str
    candidate: str
    metric: str
    greater_is_better: bool
    difference: float  # candidate minus baseline, in the metric's units
    low: float
    high: float
    p_value: float
    p_adjusted: float
    wilcoxon_p: float | None
    effect_size: float
    p_better: float
    p_equivalent: float
    p_worse: float
    rope: float
    verdict: str  # "helps", "hurts", "equivalent" or "no clear difference"
    sentence: str
    test: str = "corrected t-test"

    def finding(self) -> Finding:
        """The comparison as a finding (a warning when the idea makes things worse)."""
        severity = Severity.WARNING if self.verdict == "hurts" else Severity.INFO
        return Finding(
            severity=severity,
            check=f"compare_{self.verdict.replace(' ', '_')}",
            message=self.sentence,
            evidence={k: v for k, v in self.__dict__.items() if k != "sentence"},
        )


@dataclass
class CompareResult:
    """Scores of every candidate, their comparisons with the baseline, and what failed."""

    metric: str
    greater_is_better: bool
    repeats: int
    folds: int
    rows: int
    candidates: list[CandidateScores]
    comparisons: list[Comparison] = field(default_factory=list)
    data: str | None = None
    run_id: str | None = None

    @property
    def baseline(self) -> str:
        return self.candidates[0].name

    @property
    def failures(self) -> list[CandidateScores]:
        return [c for c in self.candidates if not c.ok]

    def findings(self) -> list[Finding]:
        out = [c.finding() for c in self.comparisons]
        for c in self.failures:
            out.append(
                Finding(
                    severity=Severity.ERROR,
                    check="compare_candidate_failed",
                    message=f"{c.name} could not be compared: {c.error}",
                    evidence={"source": c.source},
                )
            )
        return out


def repeated_folds(
    y: np.ndarray, task: Task, repeats: int, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``repeats`` different shuffles of ``folds``-fold cross-validation (stratified for
    classification), every candidate sees the same ones."""
    from mlre.data.split import repeated_folds

    return repeated_folds(y, task=task, k=folds, seed=seed, repeats=repeats)


def _split_score(
    predict: Callable[[FoldData], np.ndarray],
    shared: tuple[pd.DataFrame, np.ndarray],
    train: np.ndarray,
    test: np.ndarray,
    setting: tuple,
    metric: Metric,
) -> float:
    """One candidate's score on one split (run where the executor runs it)."""
    X, y = shared
    task, n_classes, plan, contract, seed = setting
    fold = FoldData(X.iloc[train], y[train], X.iloc[test], task, n_classes, plan, contract, seed)
    return float(metric(y[test], predict(fold)))


def evaluate_candidates(
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    task: Task,
    n_classes: int,
    contract: DataContract,
    plan: FeaturePlan,
    candidates: list[Candidate],
    metric: Metric,
    repeats: int,
    folds: int,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
    executor: Any = None,
) -> CompareResult:
    """Score every candidate on the same ``repeats`` x ``folds`` splits.

    A candidate that fails (an idea that raises, answers in the wrong shape) is reported with its
    reason and left out of the statistics; the others are still compared.
    """
    from mlre.search.executor import LocalExecutor, WorkerLost

    splits = repeated_folds(y, task, repeats, folds, seed)
    own = executor is None
    executor = executor or LocalExecutor(1)
    shared = executor.put((X, y))
    total = len(splits) * len(candidates)
    jobs: dict[Any, tuple[int, int]] = {}
    calls: dict[tuple[int, int], tuple] = {}
    lost: set[tuple[int, int]] = set()
    try:
        for c, cand in enumerate(candidates):
            predict = cand.predict if executor.in_process else cand.remote()
            for i, (train, test) in enumerate(splits):
                setting = (task, n_classes, plan, contract, seed + i)
                calls[(c, i)] = (_split_score, predict, shared, train, test, setting, metric)
                jobs[executor.submit(*calls[(c, i)])] = (c, i)
        scores = np.full((len(candidates), len(splits)), np.nan)
        errors: dict[int, dict[int, str]] = {}
        done = 0
        pending = list(jobs)
        while pending:
            for job in executor.wait(pending, timeout=60.0):
                pending.remove(job)
                c, i = jobs[job]
                try:
                    scores[c, i] = executor.result(job)
                except WorkerLost as err:
                    if (c, i) in lost:  # twice: the candidate fails with the reason
                        errors.setdefault(c, {})[i] = f"its worker died twice: {err}"
                    else:  # once is bad luck (a node lost, a process killed): fit it again
                        lost.add((c, i))
                        again = executor.submit(*calls[(c, i)])
                        jobs[again] = (c, i)
                        pending.append(again)
                        continue
                except IdeaError as err:
                    errors.setdefault(c, {})[i] = err.message
                except Exception as err:  # a family failing on this data: say so, go on
                    errors.setdefault(c, {})[i] = f"{type(err).__name__}: {err}"
                done += 1
                if progress:
                    progress(candidates[c].name, done, total)
    finally:
        if own:
            executor.close()
    results = []
    for c, cand in enumerate(candidates):
        # the first split that failed gives the reason (the same on every split, as a rule)
        error = errors[c][min(errors[c])] if c in errors else None
        if error is not None:
            log.info("%s failed: %s", cand.name, error)
            scores[c, min(errors[c]) :] = np.nan
        results.append(CandidateScores(cand.name, cand.source, cand.kind, scores[c], error))
    actual_folds = len(splits) // repeats if repeats else folds
    result = CompareResult(
        metric.name, metric.greater_is_better, repeats, actual_folds, len(y), results
    )
    return result


def compare_scores(
    result: CompareResult, *, rope: float | None = None, alpha: float = 0.05
) -> None:
    """Fill ``result.comparisons``: each working candidate against the first (the baseline)."""
    base = result.candidates[0]
    if not base.ok:
        result.comparisons = []
        return
    others = [c for c in result.candidates[1:] if c.ok]
    sign = 1.0 if result.greater_is_better else -1.0
    ratio = 1.0 / (result.folds - 1) if result.folds > 1 else 0.0
    if rope is None:
        rope = default_rope(base.scores, result.metric)
    tests = []
    for cand in others:
        diff = cand.scores - base.scores
        tests.append((cand, diff, corrected_ttest(sign * diff, ratio)))
    adjusted = holm([t.p_value for _, _, t in tests])
    comparisons = []
    for (cand, diff, test), p_adj in zip(tests, adjusted, strict=True):
        bayes = bayes_correlated_ttest(sign * diff, ratio, rope)
        verdict = decide(p_adj, test.mean, bayes.equivalent, alpha)
        raw_low, raw_high = sorted((sign * test.low, sign * test.high))
        comparison = Comparison(
            baseline=base.name,
            candidate=cand.name,
            metric=result.metric,
            greater_is_better=result.greater_is_better,
            difference=float(diff.mean()),
            low=raw_low,
            high=raw_high,
            p_value=test.p_value,
            p_adjusted=p_adj,
            wilcoxon_p=wilcoxon_p(diff),
            effect_size=test.effect_size,
            p_better=bayes.b_better,
            p_equivalent=bayes.equivalent,
            p_worse=bayes.a_better,
            rope=rope,
            verdict=verdict,
            sentence="",
        )
        comparison.sentence = sentence(comparison, multiple=len(tests) > 1)
        comparisons.append(comparison)
    result.comparisons = comparisons


def decide(p_value: float, oriented_mean: float, p_equivalent: float, alpha: float = 0.05) -> str:
    """The verdict: significant and better, significant and worse, practically equivalent, or
    not enough evidence either way."""
    if p_value < alpha and oriented_mean > 0:
        return "helps"
    if p_value < alpha and oriented_mean < 0:
        return "hurts"
    if p_equivalent >= 0.95:
        return "equivalent"
    return "no clear difference"


def paired_bootstrap(
    y: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    metric: Metric,
    *,
    rope: float,
    samples: int = 2_000,
    seed: int = 0,
    names: tuple[str, str] = ("A", "B"),
    alpha: float = 0.05,
) -> Comparison:
    """B against A on the same test rows: the metric of both on each bootstrap resample of the
    rows, the percentile interval of the difference, a two-sided p-value, and the share of
    resamples in which B is practically better, equivalent or worse."""
    rng = np.random.default_rng(seed)
    n = len(y)
    point = metric(y, pred_b) - metric(y, pred_a)
    diffs = np.empty(samples)
    for i in range(samples):
        rows = rng.integers(0, n, n)
        diffs[i] = metric(y[rows], pred_b[rows]) - metric(y[rows], pred_a[rows])
    diffs = diffs[np.isfinite(diffs)]
    sign = 1.0 if metric.greater_is_better else -1.0
    oriented = sign * diffs
    p = float(min(1.0, 2 * min((oriented <= 0).mean(), (oriented >= 0).mean())))
    low, high = np.percentile(diffs, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    better, worse = float((oriented > rope).mean()), float((oriented < -rope).mean())
    sd = float(diffs.std(ddof=1)) if len(diffs) > 1 else 0.0
    comparison = Comparison(
        baseline=names[0],
        candidate=names[1],
        metric=metric.name,
        greater_is_better=metric.greater_is_better,
        difference=float(point),
        low=float(low),
        high=float(high),
        p_value=p,
        p_adjusted=p,
        wilcoxon_p=None,
        effect_size=float(point / sd) if sd > 0 else 0.0,
        p_better=better,
        p_equivalent=max(0.0, 1.0 - better - worse),
        p_worse=worse,
        rope=rope,
        verdict=decide(p, sign * point, 1.0 - better - worse, alpha),
        sentence="",
        test=f"paired bootstrap of {n:,} test rows",
    )
    comparison.sentence = sentence(comparison)
    return comparison


def default_rope(scores: np.ndarray, metric: str) -> float:
    """A difference too small to matter: 1% of the baseline's mean score (0.005 for scores
    bounded by 1, such as AUC and accuracy, where 1% of a high score would be lenient)."""
    mean = abs(float(np.nanmean(scores)))
    bounded = metric in {"roc_auc", "accuracy", "balanced_accuracy", "f1", "r2"}
    return 0.005 if bounded else max(0.01 * mean, 1e-12)


def sentence(c: Comparison, *, multiple: bool = False) -> str:
    """The comparison in plain words."""
    direction = "higher" if c.greater_is_better else "lower"
    better = (c.difference > 0) == c.greater_is_better
    change = "improves" if better else "worsens"
    p = f"p = {c.p_adjusted:.3g}" + (", Holm-adjusted" if multiple else "")
    test = c.test
    head = {
        "helps": f"{c.candidate} {change} {c.metric} by {abs(c.difference):.4g} over {c.baseline}",
        "hurts": f"{c.candidate} {change} {c.metric} by {abs(c.difference):.4g} against {c.baseline}",
        "equivalent": f"{c.candidate} and {c.baseline} are practically equivalent on {c.metric}",
        "no clear difference": f"no clear difference between {c.candidate} and {c.baseline} on "
        f"{c.metric}",
    }[c.verdict]
    return (
        f"{head} (difference {c.difference:+.4g}, 95% CI [{c.low:+.4g}, {c.high:+.4g}], "
        f"{direction} is better; {test} {p}); probability it is practically better: "
        f"{c.p_better:.2f}, equivalent: {c.p_equivalent:.2f}, worse: {c.p_worse:.2f} "
        f"(region of practical equivalence ±{c.rope:.3g})"
    )
