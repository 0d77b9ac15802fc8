"""Promotions, and the gate a full promotion must pass.

A version becomes champion only after it has been on trial (shadow or canary) for at least the
rollback policy's minimum of requests without being rolled back or erring beyond the policy, and
only if its offline holdout score is no worse than the champion's beyond the spec's margin. The
very first champion of a model has nothing to be compared with and passes. Refusals are written
to the audit log too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlre.errors import GateError, InputError
from mlre.serve.predlog import PredictionLog
from mlre.spec import METRICS, DeployPolicy
from mlre.track.audit_log import AuditLog
from mlre.track.releases import (
    make_champion,
    read_release,
    record_action,
    start_trial,
    version_tags,
)
from mlre.track.store import store_client

MODES = ("shadow", "canary", "full")


@dataclass
class Promotion:
    """What a promotion did, and the evidence the gate weighed."""

    model: str
    version: str
    mode: str
    share: float
    audit_seq: int
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "model": self.model,
            "version": self.version,
            "mode": self.mode,
            "share": self.share,
            "audit_seq": self.audit_seq,
            "evidence": self.evidence,
        }


def promote(
    name: str,
    version: str,
    mode: str,
    *,
    share: float = 0.0,
    actor: str | None = None,
    reason: str = "",
    policy: DeployPolicy | None = None,
    predictions: PredictionLog | None = None,
    audit: AuditLog | None = None,
) -> Promotion:
    """Put ``version`` on trial (shadow, canary) or make it the champion (full, gated)."""
    if mode not in MODES:
        raise InputError(f"unknown promotion {mode!r}", hint="one of: " + ", ".join(MODES))
    audit = audit or AuditLog()
    version = str(version)
    if mode in ("shadow", "canary"):
        record = start_trial(
            name,
            version,
            mode,
            share=share if mode == "canary" else 0.0,
            actor=actor,
            reason=reason,
            audit=audit,
        )
        return Promotion(name, version, mode, share if mode == "canary" else 0.0, record.seq)
    policy = policy or DeployPolicy()
    evidence = gate(name, version, policy, predictions or PredictionLog())
    if evidence["refusals"]:
        record_action(
            audit,
            store_client(),
            name,
            "promote_refused",
            {"candidate": version},
            actor,
            "; ".join(evidence["refusals"]),
            evidence,
        )
        raise GateError(
            f"version {version} of {name!r} cannot become champion: "
            + "; ".join(evidence["refusals"]),
            hint=f"try it first: `mlre promote {name} --version {version} --shadow`, let traffic "
            "reach it, then promote it again",
        )
    record = make_champion(
        name,
        version,
        actor=actor,
        reason=reason or evidence["summary"],
        evidence=evidence,
        audit=audit,
    )
    return Promotion(name, version, "full", 1.0, record.seq, evidence)


def gate(
    name: str, version: str, policy: DeployPolicy, predictions: PredictionLog
) -> dict[str, Any]:
    """The evidence for making ``version`` champion, and every reason it falls short."""
    release = read_release(name)
    mine = version_tags(name, version)
    refusals: list[str] = []
    evidence: dict[str, Any] = {"champion": release.champion, "refusals": refusals}
    if release.champion is None:
        evidence["summary"] = "first champion of the model"
        return evidence
    if release.champion == version:
        refusals.append("it is the champion already")
        return evidence
    # a trial window without a rollback
    if release.challenger != version or release.since is None:
        refusals.append("it is not on trial (shadow or canary) now")
    else:
        rules = policy.rollback
        seen = predictions.count(
            name, version=version, roles=("shadow", "challenger"), since=release.since
        )
        errors = predictions.count(
            name, version=version, roles=("shadow", "challenger"), since=release.since, errors=True
        )
        evidence.update(
            {"trial_mode": release.mode, "trial_requests": seen, "trial_errors": errors}
        )
        if seen < rules.min_requests:
            refusals.append(
                f"its {release.mode} trial has seen {seen} request(s), fewer than the "
                f"{rules.min_requests} the policy asks for"
            )
        elif errors / seen > rules.max_error_rate:
            refusals.append(
                f"it failed {errors} of {seen} trial requests ({errors / seen:.1%}; limit "
                f"{rules.max_error_rate:.1%})"
            )
    # offline: the holdout score against the champion's, on the same metric
    theirs = version_tags(name, release.champion)
    metric = mine.get("mlre.metric")
    if metric and metric == theirs.get("mlre.metric") and metric in METRICS:
        a, b = float(mine["mlre.holdout_score"]), float(theirs["mlre.holdout_score"])
        higher = METRICS[metric][1]
        worse = (b - a) if higher else (a - b)
        evidence.update(
            {"metric": metric, "holdout": a, "champion_holdout": b, "margin": policy.gate_margin}
        )
        if worse > policy.gate_margin:
            refusals.append(
                f"its holdout {metric} {a:.4f} is worse than the champion's {b:.4f} by more than "
                f"the margin {policy.gate_margin:g}"
            )
    else:
        evidence["metric"] = None
        refusals.append(
            f"its holdout score is on {metric or 'no metric'}, the champion's on "
            f"{theirs.get('mlre.metric') or 'no metric'}: they cannot be compared"
        )
    if not refusals:
        evidence["summary"] = (
            f"passed its {release.mode} trial ({evidence['trial_requests']} requests) and its "
            f"holdout {metric} {evidence['holdout']:.4f} is within {policy.gate_margin:g} of the "
            f"champion's {evidence['champion_holdout']:.4f}"
        )
    return evidence
