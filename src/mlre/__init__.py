"""mlre: a machine-learning research engineer you can run.

The public names below load on first use, so that ``import mlre.serve`` (a serving replica) does
not pull in the search, the evaluation and the report, and ``import mlre`` stays quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mlre.version import __version__

#: public name -> the module that defines it
_EXPORTS = {
    "AuditReport": "mlre.api.audit",
    "AutoClassifier": "mlre.api.automodel",
    "AutoModel": "mlre.api.automodel",
    "AutoRegressor": "mlre.api.automodel",
    "DataContract": "mlre.data.contract",
    "Finding": "mlre.findings",
    "Findings": "mlre.findings",
    "InputError": "mlre.errors",
    "MlreError": "mlre.errors",
    "RunResult": "mlre.api.run",
    "Severity": "mlre.findings",
    "Spec": "mlre.spec",
    "SpecError": "mlre.errors",
    "TrackingError": "mlre.errors",
    "ablate": "mlre.api",
    "abtest": "mlre.api",
    "audit": "mlre.api",
    "build_report": "mlre.api",
    "causal_effect": "mlre.api",
    "compare": "mlre.api",
    "compare_datasets": "mlre.api",
    "compare_runs": "mlre.api",
    "deployments": "mlre.api",
    "explain_predictions": "mlre.api",
    "fairness": "mlre.api",
    "init": "mlre.api",
    "leaderboard": "mlre.api",
    "load_spec": "mlre.spec",
    "load_table": "mlre.data.load",
    "mitigate": "mlre.api",
    "predict": "mlre.api",
    "promote": "mlre.api",
    "reproduce": "mlre.api",
    "rollback": "mlre.api",
    "run": "mlre.api",
    "run_seeds": "mlre.api",
    "runs": "mlre.api",
    "serve_model": "mlre.api",
    "verify_audit_log": "mlre.api",
    "watch": "mlre.api",
}

__all__ = [
    "AuditReport",
    "AutoClassifier",
    "AutoModel",
    "AutoRegressor",
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

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ loads on use
    # from the defining modules: ``api.run`` can be read as the module mlre.api.run
    from mlre.api.ablate import ablate
    from mlre.api.across import compare_datasets
    from mlre.api.audit import AuditReport, audit, init
    from mlre.api.automodel import AutoClassifier, AutoModel, AutoRegressor
    from mlre.api.causal import abtest, causal_effect
    from mlre.api.compare import compare, compare_runs
    from mlre.api.deploy import deployments, promote, rollback, serve_model, verify_audit_log
    from mlre.api.explain import explain_predictions
    from mlre.api.fairness import fairness, mitigate
    from mlre.api.history import build_report, leaderboard, runs
    from mlre.api.monitor import watch
    from mlre.api.prediction import predict
    from mlre.api.reproduce import reproduce
    from mlre.api.run import RunResult, run
    from mlre.api.seeds import run_seeds
    from mlre.data.contract import DataContract
    from mlre.data.load import load_table
    from mlre.errors import InputError, MlreError, SpecError, TrackingError
    from mlre.findings import Finding, Findings, Severity
    from mlre.spec import Spec, load_spec


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mlre' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
