"""The public Python API: what ``import mlre`` offers. Each CLI verb is one call here."""

from mlre.api.audit import AuditReport, audit, init
from mlre.api.explain import Explanations, explain_predictions
from mlre.api.run import (
    Prediction,
    RunResult,
    build_report,
    leaderboard,
    predict,
    run,
    runs,
)

__all__ = [
    "AuditReport",
    "Explanations",
    "Prediction",
    "RunResult",
    "audit",
    "build_report",
    "explain_predictions",
    "init",
    "leaderboard",
    "predict",
    "run",
    "runs",
]
