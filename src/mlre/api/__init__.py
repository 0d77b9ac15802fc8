"""The public Python API: what ``import mlre`` offers. Each CLI verb is one call here."""

from mlre.api.audit import AuditReport, audit, init
from mlre.api.deploy import deployments, promote, rollback, serve_model, verify_audit_log
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
    "deployments",
    "explain_predictions",
    "init",
    "leaderboard",
    "predict",
    "promote",
    "rollback",
    "run",
    "runs",
    "serve_model",
    "verify_audit_log",
]
