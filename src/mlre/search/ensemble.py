"""Greedy ensemble selection with replacement (Caruana et al., 2004) over out-of-fold predictions."""

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
