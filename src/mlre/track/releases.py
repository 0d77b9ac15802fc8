"""Who serves what: release roles kept in the MLflow Model Registry.

The ``champion`` alias answers live traffic; the ``challenger`` alias is the version on trial,
with the way it is tried (shadow, or a canary share of live traffic) in the registered model's
``mlre.release`` tag. Every change goes through here, so each one is written to the audit log
and the log's newest hash for the model is pinned in the registry (``mlre.audit_head``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mlre.errors import InputError
from mlre.track.audit_log import HEAD_TAG, AuditLog, AuditRecord, anchor_value, parse_anchor
from mlre.track.store import store_client

CHAMPION = "champion"
CHALLENGER = "challenger"
CANDIDATE = "candidate"
RELEASE_TAG = "mlre.release"


@dataclass(frozen=True)
class Release:
    """A registered model's release state, as the registry has it now."""

    name: str
    champion: str | None
    challenger: str | None
    mode: str | None  # shadow | canary, for the challenger
    share: float  # the canary's share of live traffic
    since: float | None  # when the challenger's trial began (epoch seconds)
    candidate: str | None = None

    @property
    def serving(self) -> str | None:
        """The version that answers live traffic: the champion, else the latest candidate."""
        return self.champion or self.candidate

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "model": self.name,
            "champion": self.champion,
            "challenger": self.challenger,
            "mode": self.mode,
            "share": self.share,
            "since": _iso(self.since),
            "candidate": self.candidate,
        }


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def read_release(name: str, client: Any = None) -> Release:
    """The release state of registered model ``name`` (one registry call)."""
    from mlflow.exceptions import MlflowException

    client = client or store_client()
    try:
        rm = client.get_registered_model(name)
    except MlflowException:
        raise InputError(
            f"no registered model named {name!r}",
            hint="`mlre run` registers one; `mlre runs` lists what was trained",
        ) from None
    aliases = {k: str(v) for k, v in (rm.aliases or {}).items()}
    tag = (rm.tags or {}).get(RELEASE_TAG)
    info = json.loads(tag) if tag else {}
    challenger = aliases.get(CHALLENGER)
    current = challenger is not None and str(info.get("version")) == challenger
    return Release(
        name=name,
        champion=aliases.get(CHAMPION),
        challenger=challenger,
        mode=info.get("mode") if current else ("shadow" if challenger else None),
        share=float(info.get("share", 0.0)) if current else 0.0,
        since=info.get("since") if current else None,
        candidate=aliases.get(CANDIDATE),
    )


def version_tags(name: str, version: str, client: Any = None) -> dict[str, str]:
    """The tags of one registered version (its hash, metric and holdout score)."""
    from mlflow.exceptions import MlflowException

    client = client or store_client()
    try:
        return dict(client.get_model_version(name, str(version)).tags or {})
    except MlflowException:
        raise InputError(
            f"{name!r} has no version {version}",
            hint=f"`mlre deployments {name}` shows the versions in use",
        ) from None


def anchors(client: Any = None) -> dict[str, tuple[int, str]]:
    """Per registered model, the newest audit record pinned in the registry."""
    client = client or store_client()
    out = {}
    for rm in client.search_registered_models(max_results=1000):
        pinned = parse_anchor((rm.tags or {}).get(HEAD_TAG))
        if pinned:
            out[rm.name] = pinned
    return out


def record_action(
    audit: AuditLog,
    client: Any,
    name: str,
    action: str,
    versions: dict[str, Any],
    actor: str | None,
    reason: str,
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append a release action to the audit log and pin it in the registry as the newest."""
    record = audit.append(
        action, name, versions=versions, actor=actor, reason=reason, details=details
    )
    client.set_registered_model_tag(name, HEAD_TAG, anchor_value(record))
    return record


def _end_trial(client: Any, name: str) -> None:
    client.delete_registered_model_alias(name, CHALLENGER)
    client.delete_registered_model_tag(name, RELEASE_TAG)


def resolve_version(model: str) -> tuple[str, str]:
    """The registered name and version that ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``
    or a bare NAME (its champion, else its latest candidate) stands for."""
    client = store_client()
    if model.startswith("models:/"):
        name, _, version = model[len("models:/") :].partition("/")
        if "@" in name:
            name, alias = name.split("@", 1)
            try:
                return name, str(client.get_model_version_by_alias(name, alias).version)
            except Exception:
                raise InputError(f"{name!r} has no version with the alias {alias!r}") from None
        return name, version
    serving = read_release(model, client).serving
    if serving is None:
        raise InputError(f"{model!r} has no champion or candidate version")
    return model, str(serving)


def start_trial(
    name: str,
    version: str,
    mode: str,
    *,
    share: float = 0.0,
    actor: str | None = None,
    reason: str = "",
    audit: AuditLog | None = None,
) -> AuditRecord:
    """Make ``version`` the challenger, in shadow or as a canary with ``share`` of traffic."""
    if mode not in ("shadow", "canary"):
        raise InputError(f"unknown trial mode {mode!r}", hint="shadow or canary")
    if mode == "canary" and not 0 < share < 1:
        raise InputError(
            f"a canary takes a share of traffic between 0 and 100%, not {share:.0%}",
            hint="e.g. --canary 10",
        )
    client = store_client()
    before = read_release(name, client)
    version_tags(name, version, client)  # it exists
    if before.champion == str(version):
        raise InputError(f"version {version} of {name!r} is already the champion")
    client.set_registered_model_alias(name, CHALLENGER, str(version))
    info = {"version": str(version), "mode": mode, "share": share, "since": time.time()}
    client.set_registered_model_tag(name, RELEASE_TAG, json.dumps(info))
    return record_action(
        audit or AuditLog(),
        client,
        name,
        mode,
        {
            "challenger": str(version),
            "champion": before.champion,
            "replaced_challenger": before.challenger,
        },
        actor,
        reason,
        {"share": share} if mode == "canary" else None,
    )


def make_champion(
    name: str,
    version: str,
    *,
    actor: str | None = None,
    reason: str = "",
    evidence: dict[str, Any] | None = None,
    audit: AuditLog | None = None,
) -> AuditRecord:
    """Make ``version`` the champion; it stops being the challenger if it was one."""
    client = store_client()
    before = read_release(name, client)
    version_tags(name, version, client)
    client.set_registered_model_alias(name, CHAMPION, str(version))
    if before.challenger == str(version):
        _end_trial(client, name)
    return record_action(
        audit or AuditLog(),
        client,
        name,
        "promote",
        {"champion": str(version), "previous_champion": before.champion},
        actor,
        reason,
        evidence,
    )


def rollback(
    name: str,
    *,
    actor: str | None = None,
    reason: str = "",
    evidence: dict[str, Any] | None = None,
    audit: AuditLog | None = None,
    expected: str | None = None,
) -> AuditRecord | None:
    """End the challenger's trial (the champion keeps serving). With ``expected``, only if that
    version is still the challenger (a service rolling back what it measured); ``None`` when
    there was nothing to roll back."""
    client = store_client()
    before = read_release(name, client)
    if before.challenger is None or (expected is not None and before.challenger != expected):
        return None
    _end_trial(client, name)
    return record_action(
        audit or AuditLog(),
        client,
        name,
        "rollback",
        {"challenger": before.challenger, "champion": before.champion},
        actor,
        reason,
        {"mode": before.mode, **(evidence or {})},
    )


def restore_champion(
    name: str,
    *,
    actor: str | None = None,
    reason: str = "",
    audit: AuditLog | None = None,
) -> AuditRecord | None:
    """Put back the champion before the current one (a rollback with no challenger on trial)."""
    log = audit or AuditLog()
    client = store_client()
    current = read_release(name, client).champion
    previous = None
    for r in reversed(log.records(name)):
        if r.action == "promote" and r.versions.get("champion") == current:
            previous = r.versions.get("previous_champion")
            break
    if current is None or previous is None:
        return None
    client.set_registered_model_alias(name, CHAMPION, str(previous))
    return record_action(
        log,
        client,
        name,
        "rollback",
        {"champion": str(previous), "demoted_champion": current},
        actor,
        reason,
    )
