"""mlre: a machine-learning research engineer you can run."""

from importlib import metadata

try:
    __version__ = metadata.version("mlre")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from mlre.api import AuditReport, audit, init
from mlre.data.contract import DataContract
from mlre.data.load import load_table
from mlre.errors import InputError, MlreError, SpecError, TrackingError
from mlre.findings import Finding, Findings, Severity
from mlre.spec import Spec, load_spec

__all__ = [
    "AuditReport",
    "DataContract",
    "Finding",
    "Findings",
    "InputError",
    "MlreError",
    "Severity",
    "Spec",
    "SpecError",
    "TrackingError",
    "__version__",
    "audit",
    "init",
    "load_spec",
    "load_table",
]
