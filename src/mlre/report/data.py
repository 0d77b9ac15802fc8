"""The report's data section: the table the model learnt from (source, hash, size), the profile
of the target and of the columns the model relies on most, and the audit's findings."""

from __future__ import annotations

from typing import Any


def data_section(audit: Any, spec: Any, ranked: list[str]) -> dict[str, Any]:
    """The data section, profiling the target and the first twelve of the ``ranked`` columns."""
    profiles = audit.profiles
    order = [c for c in ranked if c in profiles] + [
        c for c in profiles if c not in ranked and c != spec.target
    ]
    columns = []
    for name in ([spec.target] if spec.target in profiles else []) + order[:12]:
        p = profiles[name].model_dump(mode="json")
        columns.append({k: p.get(k) for k in _PROFILE_KEYS})
    return {
        "source": audit.source,
        "sha256": audit.data_sha256,
        "rows": audit.n_rows,
        "columns": audit.n_cols,
        "profile": columns,
        "audit_findings": audit.findings.to_list(),
    }


_PROFILE_KEYS = (
    "name",
    "role",
    "dtype",
    "missing_frac",
    "n_unique",
    "top",
    "mean",
    "min",
    "median",
    "max",
)
