"""Who serves what: release roles kept in the MLflow Model Registry.

The ``champion`` alias answers live traffic; the ``challenger`` alias is the version on trial,
with the way it is tried (shadow, or a canary share of live traffic) in the registered model's
``mlre.release`` tag. Every change goes through here, write-ahead: the audit record first, with
the state it leads to (its ``target``), then the registry's aliases and tag, then the record's
hash pinned in the registry (``mlre.audit_head``) to say the action is complete. A process killed
in between leaves a record newer than the pin: ``finish_incomplete`` (run by the service on start
and before every release action) sets the registry to that record's target and pins it. Aliases
moved by other means than these commands differ from the newest record's target: the service
does not serve them (``audited``) and ``verify`` fails.
"""

from __future__ import annotations

import contextlib
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
    target: dict[str, Any] | None = None,
) -> AuditRecord:
    """A release action, write-ahead: its audit record (with the ``target`` state: champion,
    challenger and the trial's ``release`` tag), then the registry set to that target, then the
    record pinned in the registry as the newest: the action is complete."""
    details = dict(details or {})
    if target is not None:
        details["target"] = target
    record = audit.append(
        action, name, versions=versions, actor=actor, reason=reason, details=details
    )
    if target is not None:
        apply_target(client, name, target)
    client.set_registered_model_tag(name, HEAD_TAG, anchor_value(record))
    return record


def apply_target(client: Any, name: str, target: dict[str, Any]) -> None:
    """Set the registry's champion and challenger aliases and the trial tag to ``target``."""
    for alias in (CHAMPION, CHALLENGER):
        version = target.get(alias)
        if version is not None:
            client.set_registered_model_alias(name, alias, str(version))
        else:
            with contextlib.suppress(Exception):  # already absent
                client.delete_registered_model_alias(name, alias)
    if target.get("release"):
        client.set_registered_model_tag(name, RELEASE_TAG, json.dumps(target["release"]))
    else:
        with contextlib.suppress(Exception):
            client.delete_registered_model_tag(name, RELEASE_TAG)


def _target(champion: str | None, challenger: str | None, release: dict | None) -> dict[str, Any]:
    return {"champion": champion, "challenger": challenger, "release": release}


def _release_info(before: Release) -> dict[str, Any] | None:
    if before.challenger is None:
        return None
    return {"version": before.challenger, "mode": before.mode, "share": before.share,
            "since": before.since}  # fmt: skip


def newest_target(name: str, audit: AuditLog) -> tuple[AuditRecord, dict[str, Any]] | None:
    """The model's newest audit record that says what state it leads to, with that state."""
    for record in reversed(audit.records(name)):
        target = record.details.get("target")
        if isinstance(target, dict):
            return record, target
    return None


def finish_incomplete(
    name: str, audit: AuditLog | None = None, client: Any = None
) -> AuditRecord | None:
    """Complete a release action a crash left half done (its record newer than the registry's
    pin): the registry is set to the record's target and the record pinned. Returns the record
    finished, or None when nothing was pending."""
    from mlflow.exceptions import MlflowException

    audit = audit or AuditLog()
    client = client or store_client()
    try:
        rm = client.get_registered_model(name)
    except MlflowException:  # no such model: nothing to finish (the caller says so)
        return None
    pinned = parse_anchor((rm.tags or {}).get(HEAD_TAG))
    newest = newest_target(name, audit)
    if newest is None:
        return None
    record, target = newest
    if pinned is not None and pinned[0] >= record.seq:
        return None
    apply_target(client, name, target)
    client.set_registered_model_tag(name, HEAD_TAG, anchor_value(record))
    return record


def out_of_band(release: Release, audit: AuditLog) -> dict[str, str]:
    """The roles whose alias differs from what the audit log's newest action left (moved by
    other means than mlre's release commands), role -> the version the registry names; empty
    when they agree, or when no action recorded a target yet."""
    newest = newest_target(release.name, audit)
    if newest is None:
        return {}
    _, target = newest
    out = {}
    for role, now in ((CHAMPION, release.champion), (CHALLENGER, release.challenger)):
        wanted = target.get(role)
        if (None if wanted is None else str(wanted)) != now:
            out[role] = now or "none"
    return out


def audited(release: Release, audit: AuditLog) -> Release:
    """The release the audit log stands for: ``release`` where the two agree, else the
    newest recorded action's target (an alias moved out of band is not served)."""
    moved = out_of_band(release, audit)
    newest = newest_target(release.name, audit)
    if not moved or newest is None:
        return release
    target = newest[1]
    info = target.get("release") or {}
    challenger = target.get(CHALLENGER)
    return Release(
        name=release.name,
        champion=target.get(CHAMPION),
        challenger=None if challenger is None else str(challenger),
        mode=info.get("mode") if challenger is not None else None,
        share=float(info.get("share") or 0.0) if challenger is not None else 0.0,
        since=info.get("since") if challenger is not None else None,
        candidate=release.candidate,
    )


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
    audit = audit or AuditLog()
    finish_incomplete(name, audit, client)
    before = read_release(name, client)
    version_tags(name, version, client)  # it exists
    if before.champion == str(version):
        raise InputError(f"version {version} of {name!r} is already the champion")
    info = {"version": str(version), "mode": mode, "share": share, "since": time.time()}
    return record_action(
        audit,
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
        _target(before.champion, str(version), info),
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
    audit = audit or AuditLog()
    finish_incomplete(name, audit, client)
    before = read_release(name, client)
    version_tags(name, version, client)
    trial = before.challenger is not None and before.challenger != str(version)
    target = _target(
        str(version), before.challenger if trial else None, _release_info(before) if trial else None
    )
    return record_action(
        audit,
        client,
        name,
        "promote",
        {"champion": str(version), "previous_champion": before.champion},
        actor,
        reason,
        evidence,
        target,
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
    audit = audit or AuditLog()
    finish_incomplete(name, audit, client)
    before = read_release(name, client)
    if before.challenger is None or (expected is not None and before.challenger != expected):
        return None
    return record_action(
        audit,
        client,
        name,
        "rollback",
        {"challenger": before.challenger, "champion": before.champion},
        actor,
        reason,
        {"mode": before.mode, **(evidence or {})},
        _target(before.champion, None, None),
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
    finish_incomplete(name, log, client)
    before = read_release(name, client)
    current = before.champion
    previous = None
    for r in reversed(log.records(name)):
        if r.action == "promote" and r.versions.get("champion") == current:
            previous = r.versions.get("previous_champion")
            break
    if current is None or previous is None:
        return None
    return record_action(
        log,
        client,
        name,
        "rollback",
        {"champion": str(previous), "demoted_champion": current},
        actor,
        reason,
        target=_target(str(previous), before.challenger, _release_info(before)),
    )
