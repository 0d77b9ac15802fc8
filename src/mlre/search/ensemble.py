"""Greedy ensemble selection with replacement (Caruana et al., 2004) over out-of-fold predictions,
and a check that the ensemble it chooses does better than one model on rows it was not chosen on."""

from __future__ import annotations

import numpy as np

from mlre.evaluate.metrics import Metric


def caruana(
    predictions: list[np.ndarray], y: np.ndarray, metric: Metric, rounds: int = 30
) -> tuple[np.ndarray, float]:
    """Weights over ``predictions`` that minimise the metric's loss of their weighted average.

    Starts from the best single model, then for ``rounds`` rounds adds (with replacement) the
    model whose addition gives the lowest loss, and keeps the best ensemble seen. Returns the
    weights (summing to 1) and that ensemble's loss.
    """
    losses = [metric.loss(y, p) for p in predictions]
    counts = np.zeros(len(predictions))
    first = int(np.argmin(losses))
    counts[first] = 1
    current = predictions[first].astype(float).copy()
    best_counts, best_loss = counts.copy(), losses[first]
    for _ in range(rounds if len(predictions) > 1 else 0):
        size = counts.sum()
        trial_losses = [metric.loss(y, (current * size + p) / (size + 1)) for p in predictions]
        pick = int(np.argmin(trial_losses))
        current = (current * size + predictions[pick]) / (size + 1)
        counts[pick] += 1
        if trial_losses[pick] < best_loss - 1e-12:
            best_counts, best_loss = counts.copy(), trial_losses[pick]
    return best_counts / best_counts.sum(), float(best_loss)


def cheapest_within(losses: list[float], noise: float, costs: list[float]) -> int:
    """The position of the cheapest candidate whose loss is within ``noise`` of the lowest
    (the lowest itself when none is cheaper; ties go to the lower loss)."""
    best = min(losses)
    close = [i for i, loss in enumerate(losses) if loss <= best + max(0.0, noise)]
    return min(close, key=lambda i: (costs[i], losses[i]))


#: The validation of an ensemble looks at most at this many rows.
VALIDATION_ROWS = 20_000
#: Random cuts of the rows in two halves that the validation averages over.
VALIDATION_REPEATS = 3


def validated_caruana(
    predictions: list[np.ndarray], y: np.ndarray, metric: Metric, seed: int, rounds: int = 30
) -> tuple[np.ndarray, float, bool]:
    """:func:`caruana`'s weights, if its selection pays on rows it did not see; else the best
    single model alone. Also returns the loss and whether the ensemble was kept.

    The out-of-fold rows are cut in two halves: an ensemble selected on one half and the single
    model best on it are both scored on the other, both ways round, for several random cuts. Weights fitted to the same
    predictions they are scored on always look better than one model; on a small table the
    difference can be the noise of those rows, and then the simpler model is the better bet."""
    weights, loss = caruana(predictions, y, metric, rounds)
    if np.count_nonzero(weights) <= 1:
        return weights, loss, False
    rng = np.random.default_rng(seed)
    splits = []
    for _ in range(VALIDATION_REPEATS):
        order = rng.permutation(len(y))[: 2 * (min(len(y), VALIDATION_ROWS) // 2)]
        halves = (order[: len(order) // 2], order[len(order) // 2 :])
        splits += [halves, halves[::-1]]
    ensemble_loss = single_loss = 0.0
    try:
        for fit, judge in splits:
            w, _ = caruana([p[fit] for p in predictions], y[fit], metric, rounds)
            mixed = sum(wi * p[judge] for wi, p in zip(w, predictions, strict=True) if wi > 0)
            ensemble_loss += metric.loss(y[judge], mixed)
            best = int(np.argmin([metric.loss(y[fit], p[fit]) for p in predictions]))
            single_loss += metric.loss(y[judge], predictions[best][judge])
    except ValueError:  # a half the metric cannot score (a single class): nothing to judge by
        return weights, loss, True
    if ensemble_loss < single_loss:
        return weights, loss, True
    alone = int(np.argmin([metric.loss(y, p) for p in predictions]))
    return np.eye(len(predictions))[alone], float(metric.loss(y, predictions[alone])), False
