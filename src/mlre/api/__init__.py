"""The public Python API: what ``import mlre`` offers. Each CLI verb is one call here."""

from mlre.api.ablate import ablate
from mlre.api.across import compare_datasets
from mlre.api.audit import AuditReport, audit, init
from mlre.api.causal import abtest, causal_effect
from mlre.api.compare import compare, compare_runs
from mlre.api.deploy import deployments, promote, rollback, serve_model, verify_audit_log
from mlre.api.explain import Explanations, explain_predictions
from mlre.api.fairness import fairness, mitigate
from mlre.api.history import build_report, leaderboard, runs
from mlre.api.monitor import MonitorResult, watch
from mlre.api.prediction import Prediction, predict
from mlre.api.reproduce import ReproduceResult, reproduce
from mlre.api.run import RunResult, run
from mlre.api.seeds import SeedsResult, run_seeds

__all__ = [
    "AuditReport",
    "Explanations",
    "MonitorResult",
    "Prediction",
    "ReproduceResult",
    "RunResult",
    "SeedsResult",
    "ablate",
    "abtest",
    "audit",
    "build_report",
    "causal_effect",
    "compare",
    "compare_datasets",
    "compare_runs",
    "deployments",
    "explain_predictions",
    "fairness",
    "init",
    "leaderboard",
    "mitigate",
    "predict",
    "promote",
    "reproduce",
    "rollback",
    "run",
    "run_seeds",
    "runs",
    "serve_model",
    "verify_audit_log",
    "watch",
]
