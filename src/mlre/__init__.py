"""mlre: a machine-learning research engineer you can run."""

from mlre.api import (
    AuditReport,
    RunResult,
    ablate,
    abtest,
    audit,
    build_report,
    causal_effect,
    compare,
    compare_datasets,
    compare_runs,
    deployments,
    explain_predictions,
    fairness,
    init,
    leaderboard,
    mitigate,
    predict,
    promote,
    reproduce,
    rollback,
    run,
    run_seeds,
    runs,
    serve_model,
    verify_audit_log,
    watch,
)
from mlre.data.contract import DataContract
from mlre.data.load import load_table
from mlre.errors import InputError, MlreError, SpecError, TrackingError
from mlre.findings import Finding, Findings, Severity
from mlre.spec import Spec, load_spec
from mlre.version import __version__

__all__ = [
    "AuditReport",
    "AutoModel",
    "DataContract",
    "Finding",
    "Findings",
    "InputError",
    "MlreError",
    "RunResult",
    "Severity",
    "Spec",
    "SpecError",
    "TrackingError",
    "__version__",
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
    "load_spec",
    "load_table",
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


def __getattr__(name: str):
    # AutoModel pulls in scikit-learn (and SciPy): load it on first use, not on `import mlre`
    if name == "AutoModel":
        from mlre.api.automodel import AutoModel

        return AutoModel
    raise AttributeError(f"module 'mlre' has no attribute {name!r}")
