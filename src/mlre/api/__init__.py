"""The public Python API: what ``import mlre`` offers. Each CLI verb is one call here."""

from mlre.api.audit import AuditReport, audit, init
from mlre.api.run import Prediction, RunResult, leaderboard, predict, run, runs

__all__ = [
    "AuditReport",
    "Prediction",
    "RunResult",
    "audit",
    "init",
    "leaderboard",
    "predict",
    "run",
    "runs",
]
