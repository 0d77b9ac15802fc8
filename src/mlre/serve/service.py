"""The serving core, free of HTTP: which model versions answer, in which role, and what happens
around each prediction (validation, canary routing, shadow copies, logging, metrics, rollback).

Roles follow the registry: a poller reads the aliases every few seconds and loads a changed
version (hash-checked) beside the one serving, then swaps one reference, so no request is
dropped or sees half a switch. Shadow predictions run on their own thread after the caller's
answer is ready; they are logged and compared, never returned.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlre.serve.batching import Overloaded, TimedOut, table_bytes
from mlre.serve.guard import TrialGuard
from mlre.serve.metrics import ServiceMetrics
from mlre.serve.predlog import LoggedPrediction, PredictionLog
from mlre.serve.protocol import BadRequest
from mlre.serve.shadow import ShadowWorker
from mlre.serve.slots import (
    CHALLENGER,
    CHAMPION,
    SHADOW,
    Answer,
    NotReady,
    Slot,
    State,
    load_slot,
    logged_outputs,
    retire,
)
from mlre.serve.validation import validated
from mlre.spec import DeployPolicy, Task
from mlre.track.audit_log import AuditLog

log = logging.getLogger(__name__)


@dataclass
class ServeConfig:
    """How a service runs: which model, limits, logs and the rollback policy."""

    model: str
    api_key: str | None = None  # one key, named "api-key" in the audit log
    api_keys: dict[str, str] = field(default_factory=dict)  # name -> key (a keys file)
    require_key_for_predict: bool = False  # predictions need a key too
    max_body_bytes: int = 2 * 1024 * 1024
    max_rows: int = 10_000
    poll_seconds: float = 2.0
    prediction_log: Path | None = None
    log_sample: float = 1.0
    log_inputs: bool = True
    retention_days: float | None = None
    audit_log: Path | None = None
    deploy: DeployPolicy = field(default_factory=DeployPolicy)
    shadow_queue: int = 1024  # mirrored requests awaiting the shadow's answer (more: dropped)

    def keys(self) -> dict[str, str]:
        """The API keys by name: the keys file's, else the one key as ``api-key``."""
        if self.api_keys:
            return dict(self.api_keys)
        return {"api-key": self.api_key} if self.api_key else {}


class Service:
    """One registered model served with its champion and, on trial, its challenger."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.name = config.model
        self.metrics = ServiceMetrics()
        self.predictions = PredictionLog(
            config.prediction_log,
            sample=config.log_sample,
            retention_days=config.retention_days,
            max_queue_bytes=int(config.deploy.max_queue_mb * 1024 * 1024),
            on_drop=lambda n: self.metrics.log_dropped.labels(self.name).inc(n),
        )
        self.audit = AuditLog(config.audit_log)
        self.state = State()
        self.problems: dict[str, str] = {}  # version -> why it is not served
        self._refresh_lock = threading.Lock()
        self._rollback_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        # mirrored requests awaiting the shadow's answer, by an id the service draws (a caller's
        # request id, sent twice, must not pair one answer with another request)
        self._shadow_pending: dict[str, tuple[State, pd.DataFrame, list[Any], str, int]] = {}
        self._shadow_bytes = 0
        # trials (version, when the trial began) this service rolled back: the poller must not
        # bring one back before the registry shows the rollback (a new trial of the same
        # version begins at another time, and is served)
        self._rolled_back: set[tuple[str, float | None]] = set()
        self._since: float | None = None  # when the challenger's trial began
        # per caller's key, the canary requests counted as evidence on the trial now on
        self._key_evidence: dict[str, int] = {}
        self._evidence_of: Any = None
        self._moved: set[str] = set()  # versions an alias names out of band, not served
        self._shadow_lock = threading.Lock()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Service:
        """Finish a release action a crash left half done, load what the registry says, then
        follow it."""
        from mlre.track.releases import finish_incomplete

        self.predictions.start()
        try:
            finished = finish_incomplete(self.name, self.audit)
        except Exception:  # a registry that cannot be read now is read again by the poller
            log.exception("could not check %s's release actions", self.name)
        else:
            if finished is not None:
                log.warning("%s: finished release action %d (%s), which had not completed",
                            self.name, finished.seq, finished.action)  # fmt: skip
        self.refresh()
        self._stop.clear()
        self._poller = threading.Thread(target=self._poll, name="mlre-registry", daemon=True)
        self._poller.start()
        return self

    def stop(self) -> None:
        """Stop following the registry, finish shadow work and write the log."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        end = time.monotonic() + 10
        while self._shadow_pending and time.monotonic() < end:
            time.sleep(0.01)
        state = self.state
        for slot in (state.champion, state.challenger):
            if slot is not None:
                slot.close()
        self.predictions.close()

    def _poll(self) -> None:
        while not self._stop.wait(self.config.poll_seconds):
            try:
                self.refresh()
            except Exception:  # a registry hiccup must not stop the poller
                log.exception("could not read the registry for %s", self.name)

    @property
    def ready(self) -> bool:
        return self.state.champion is not None

    def refresh(self) -> bool:
        """Match the served versions to the registry; whether anything changed."""
        from mlre.track.releases import audited, out_of_band, read_release

        with self._refresh_lock:
            release = read_release(self.name)
            moved = out_of_band(release, self.audit)
            for stale in self._moved - set(moved.values()):  # put back, or recorded since
                self.problems.pop(stale, None)
            self._moved = {v for v in moved.values() if v != "none"}
            for role, moved_to in moved.items():  # served: what the audit log stands for
                if moved_to != "none":
                    self.problems[moved_to] = (
                        f"the {role} alias was moved to it outside mlre's release commands (no "
                        "release action in the audit log put it there)"
                    )
            if moved:
                release = audited(release, self.audit)
            old = self.state
            champion = load_slot(self.name, release.serving, old, self.problems, self.queue_bytes)
            challenger: Any = None
            mode = release.mode
            version = release.challenger
            if version is None:
                self._rolled_back.clear()  # recorded
            if (
                version
                and version != release.serving
                and version not in self.problems
                and (version, release.since) not in self._rolled_back
            ):
                self._since = release.since
                # a canary answers callers, in this process; a shadow runs in its own
                if mode == "canary":
                    challenger = load_slot(self.name, version, old, self.problems, self.queue_bytes)
                else:
                    challenger = self._worker(version, old)
            same_trial = (
                challenger is not None and old.challenger is challenger and old.guard is not None
            )
            if same_trial:
                guard = old.guard
            elif challenger is not None:
                guard = TrialGuard(self.config.deploy.rollback, _task(challenger), version or "")
            else:
                guard = None
            new = State(
                champion,
                challenger,
                mode if challenger else None,
                release.share if challenger else 0.0,
                guard,
            )
            changed = (
                new.champion is not old.champion
                or new.challenger is not old.challenger
                or (new.mode, new.share) != (old.mode, old.share)
            )
            if changed:
                self.state = new
                self._gauges(old, new)
                retire(old, new)
                log.info(
                    "%s: champion %s, challenger %s (%s)",
                    self.name,
                    _version(champion),
                    _version(challenger),
                    new.mode,
                )
            return changed

    def _worker(self, version: str, old: State) -> ShadowWorker:
        current = old.challenger
        if isinstance(current, ShadowWorker) and current.version == version and current.alive:
            return current
        return ShadowWorker(
            self.name,
            version,
            on_result=lambda rid, out, error, seconds, timed: self._shadow_result(
                version, rid, out, error, seconds, timed
            ),
            on_failure=lambda reason: self._shadow_failed(version, reason),
        )

    def _gauges(self, old: State, new: State) -> None:
        for role, slot in ((CHAMPION, old.champion), (CHALLENGER, old.challenger)):
            if slot is not None:
                self.metrics.serving.labels(self.name, slot.version, role).set(0)
        for role, slot in ((CHAMPION, new.champion), (CHALLENGER, new.challenger)):
            if slot is not None:
                self.metrics.serving.labels(self.name, slot.version, role).set(1)

    # ----------------------------------------------------------------- predicting

    def _route(
        self, frame: pd.DataFrame, key: str | None, request_id: str | None
    ) -> tuple[State, pd.DataFrame, pd.DataFrame, list[str], str, bool]:
        """Validate a request and decide who answers it: (state, champion's input, whole
        request, warnings, request id, whether the canary's challenger answers)."""
        state = self.state
        if state.champion is None:
            raise NotReady(
                f"no version of {self.name!r} can be served"
                + (f": {'; '.join(self.problems.values())}" if self.problems else ""),
                hint=f"register one with `mlre run`, then `mlre promote {self.name} --version N --full`",
            )
        request_id = request_id or uuid.uuid4().hex
        X, warnings = validated(state.champion, frame, self.config.max_rows)
        if state.challenger is not None:  # it may read columns the champion does not
            used = set(X.columns)
            extra = [c for c in frame.columns if c not in used]
            frame = pd.concat([X, frame[extra]], axis=1) if extra else X
        # the arm is the service's to draw: by the caller's key where it sends one (the same
        # key, the same arm), else at random, never by an id the caller chose
        canary = (
            state.challenger is not None
            and state.mode == "canary"
            and in_share(f"{self.name}:{key or uuid.uuid4().hex}", state.share)
        )
        return state, X, frame, warnings, request_id, canary

    def _answered(
        self,
        state: State,
        X: pd.DataFrame,
        frame: pd.DataFrame,
        request_id: str,
        warnings: list[str],
        out: np.ndarray | None,
        seconds: float,
        error: BaseException | None,
    ) -> Answer:
        """Record the champion's answer (or failure), then mirror the request to a shadow."""
        champion = state.champion
        assert champion is not None
        self._observe(champion, CHAMPION, request_id, X, out, seconds, error)
        if error is not None:
            raise error
        assert out is not None
        if state.guard is not None:
            state.guard.champion(seconds * 1000)
            if state.mode == "canary":
                state.guard.answers("champion", champion.answers(out))
        if state.challenger is not None and state.mode == "shadow":
            self._mirror(state, frame, request_id, champion.answers(out))
        return Answer(request_id, CHAMPION, champion, out, warnings)

    def predict(
        self, frame: pd.DataFrame, *, key: str | None = None, request_id: str | None = None
    ) -> Answer:
        """Answer one request with the champion, or the challenger for a canary's share; mirror
        it to a challenger in shadow."""
        state, X, frame, warnings, request_id, canary = self._route(frame, key, request_id)
        if canary:
            answer = self._try_challenger(state, frame, request_id, warnings, key)
            if answer is not None:
                return answer
        assert state.champion is not None
        t0 = time.perf_counter()
        try:
            out, error = state.champion.raw(X, self.timeout), None
        except Overloaded:
            self.metrics.shed.labels(self.name, "batch").inc()
            raise
        except Exception as err:
            out, error = None, err
        seconds = time.perf_counter() - t0
        return self._answered(state, X, frame, request_id, warnings, out, seconds, error)

    async def predict_async(
        self, frame: pd.DataFrame, *, key: str | None = None, request_id: str | None = None
    ) -> Answer:
        """``predict`` for an event loop: the model predicts on its batch thread, never on the
        loop (a hung model must not stop health checks and other requests), and the loop waits
        for it at most the request timeout."""
        import asyncio

        state, X, frame, warnings, request_id, canary = self._route(frame, key, request_id)
        if canary:
            from starlette.concurrency import run_in_threadpool

            answer = await run_in_threadpool(
                self._try_challenger, state, frame, request_id, warnings, key
            )
            if answer is not None:
                return answer
        assert state.champion is not None
        future = self._submit(state.champion, X)
        t0 = time.perf_counter()
        out: np.ndarray | None = None
        error: Exception | None = None
        try:
            out = await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except TimeoutError:  # the wait is cancelled, and so is the queued request
            error = TimedOut(state.champion.version, self.timeout)
        except Exception as err:
            error = err
        seconds = time.perf_counter() - t0
        return self._answered(state, X, frame, request_id, warnings, out, seconds, error)

    @property
    def queue_bytes(self) -> int:
        """Bytes each queue holds at most (the spec's ``deploy.max_queue_mb``)."""
        return int(self.config.deploy.max_queue_mb * 1024 * 1024)

    @property
    def timeout(self) -> float:
        """Seconds a prediction may take (the spec's ``deploy.request_timeout_ms``)."""
        return self.config.deploy.request_timeout_ms / 1000

    def _submit(self, slot: Slot, X: pd.DataFrame) -> Any:
        """``X`` queued for ``slot``'s model; a full queue sheds the request (counted)."""
        try:
            return slot.batcher.submit(X)
        except Overloaded:
            self.metrics.shed.labels(self.name, "batch").inc()
            raise

    def _try_challenger(
        self,
        state: State,
        frame: pd.DataFrame,
        request_id: str,
        warnings: list[str],
        key: str | None = None,
    ) -> Answer | None:
        """The canary's answer, or None for the champion to answer: the request does not fit
        the challenger's own data contract (the caller's fault, no evidence against it), or it
        failed, timed out or was shed (evidence: counted, judged). A caller's key counts as
        evidence a few times a trial at most (``_counts``)."""
        slot, guard = state.challenger, state.guard
        assert slot is not None and guard is not None
        try:
            X, _ = validated(slot, frame, self.config.max_rows)
        except BadRequest:
            return None
        counted = self._counts(state, key)
        t0 = time.perf_counter()
        try:
            out = slot.raw(X, self.timeout)
        except Exception as err:  # the caller gets the champion's answer instead
            if isinstance(err, Overloaded):
                self.metrics.shed.labels(self.name, "canary").inc()
            seconds = time.perf_counter() - t0
            self._observe(slot, CHALLENGER, request_id, frame, None, seconds, err)
            if counted:
                guard.challenger(False, seconds * 1000)
                self._judge(state)
            return None
        seconds = time.perf_counter() - t0
        self._observe(slot, CHALLENGER, request_id, X, out, seconds, None)
        if counted:
            guard.challenger(True, seconds * 1000)
            guard.answers("challenger", slot.answers(out))
            self._judge(state)
        return Answer(request_id, CHALLENGER, slot, out, warnings)

    def _counts(self, state: State, key: str | None) -> bool:
        """Whether a canary request with the caller's ``key`` counts as evidence on the trial:
        each key at most a tenth of the requests a verdict needs, so that no one caller (who
        chose a key that falls in the canary's share) can roll a healthy challenger back, or
        vouch for a bad one, alone. Requests without a key draw their arm at random."""
        if key is None:
            return True
        with self._shadow_lock:
            if self._evidence_of is not state.guard or len(self._key_evidence) > MAX_KEYS:
                self._evidence_of, self._key_evidence = state.guard, {}
            seen = self._key_evidence.get(key, 0)
            if seen >= max(1, self.config.deploy.rollback.min_requests // 10):
                return False
            self._key_evidence[key] = seen + 1
            return True

    def _mirror(
        self, state: State, frame: pd.DataFrame, request_id: str, champion: list[Any]
    ) -> None:
        """Send a copy of the request to the shadow worker; its answer is handled when it comes
        back, on the worker's reader thread, never on the caller's path."""
        worker = state.challenger
        if not isinstance(worker, ShadowWorker) or not worker.alive:
            return
        if worker.features and not set(worker.features) <= set(frame.columns):
            return  # the request lacks a column the challenger reads: the caller's, not its fault
        shadow_id, size = uuid.uuid4().hex, table_bytes(frame)
        with self._shadow_lock:
            full = self._shadow_bytes + size > self.queue_bytes
            if full or len(self._shadow_pending) >= self.config.shadow_queue:
                self.metrics.shadow_dropped.labels(self.name).inc()
                self.metrics.shed.labels(self.name, "shadow").inc()
                return
            self._shadow_pending[shadow_id] = (state, frame, champion, request_id, size)
            self._shadow_bytes += size
        if not worker.submit(shadow_id, frame):
            self._shadow_done(shadow_id)

    def _shadow_done(
        self, shadow_id: str
    ) -> tuple[State, pd.DataFrame, list[Any], str, int] | None:
        """A mirrored request's record, taken off the pending ones (None if it is not there)."""
        with self._shadow_lock:
            pending = self._shadow_pending.pop(shadow_id, None)
            if pending is not None:
                self._shadow_bytes -= pending[4]
        return pending

    def _shadow_result(
        self,
        version: str,
        shadow_id: str,
        out: np.ndarray | None,
        error: str | None,
        seconds: float,
        timed: bool = True,
    ) -> None:
        """``seconds`` is the time of the worker's call that answered the request, shared by
        the requests it answered together; ``timed`` marks the one request that counts it."""
        pending = self._shadow_done(shadow_id)
        if pending is None:
            return
        state, frame, champion, request_id, _ = pending
        worker, guard = state.challenger, state.guard
        if worker is None or guard is None or worker.version != version:
            return
        failure = None if error is None else RuntimeError(error)
        X = frame
        if worker.features and list(frame.columns) != worker.features:  # another contract
            X = frame[[c for c in worker.features if c in frame.columns]]
        self._observe(worker, SHADOW, request_id, X, out, seconds, failure)
        guard.challenger(error is None, seconds * 1000 if timed else None)
        if out is not None:
            differs = False
            for a, b in zip(champion, worker.answers(out), strict=True):
                differs |= guard.compare(a, b)
            self.metrics.shadow_compared.labels(self.name, version).inc()
            if differs:
                self.metrics.shadow_disagreed.labels(self.name, version).inc()
        self._judge(state)

    def _shadow_failed(self, version: str, reason: str) -> None:
        self.problems[version] = reason
        log.error("%s version %s cannot run in shadow: %s", self.name, version, reason)

    def _observe(
        self,
        slot: Slot,
        role: str,
        request_id: str,
        X: pd.DataFrame,
        out: np.ndarray | None,
        seconds: float,
        error: BaseException | None,
    ) -> None:
        outcome = "error" if error is not None else "ok"
        self.metrics.requests.labels(self.name, slot.version, role, outcome).inc()
        if error is None:
            self.metrics.latency.labels(self.name, slot.version, role).observe(seconds)
        if not self.predictions.wants(request_id):
            return
        inputs = X if self.config.log_inputs else None  # made JSON by the log's writer thread
        outputs = None if out is None else logged_outputs(slot, out)
        message = None if error is None else f"{type(error).__name__}: {error}"[:500]
        self.predictions.add(
            LoggedPrediction(
                request_id, self.name, slot.version, role, inputs, outputs, seconds * 1000, message
            )
        )

    # ----------------------------------------------------------------- rollback

    def _judge(self, state: State) -> None:
        """Roll the challenger back if the policy says so (once, whichever thread sees it)."""
        guard, slot = state.guard, state.challenger
        if guard is None or slot is None or self.state.challenger is not slot or not guard.due():
            return
        verdict = guard.verdict()
        if verdict is None:
            return
        with self._rollback_lock, self._refresh_lock:
            if self.state.challenger is not slot:
                return
            current = self.state
            self._rolled_back.add((slot.version, self._since))
            self.state = State(current.champion, None, None, 0.0, None)
            self._gauges(current, self.state)
            retire(current, self.state)  # a shadow's process ends with its trial
        threading.Thread(
            target=self._record_rollback, args=(slot.version, verdict), daemon=True
        ).start()

    def _record_rollback(self, version: str, verdict: Any) -> None:
        from mlre.track.releases import rollback

        self.metrics.rollbacks.labels(self.name, version).inc()
        try:
            record = rollback(
                self.name,
                actor="mlre-serve",
                reason=f"automatic: {verdict.reason}",
                evidence=verdict.evidence,
                audit=self.audit,
                expected=version,
            )
            log.warning("%s version %s rolled back: %s", self.name, version, verdict.reason)
            if record is None:
                log.info("%s version %s was no longer the challenger", self.name, version)
        except Exception:
            log.exception("could not record the rollback of %s version %s", self.name, version)

    def rollback_now(self, actor: str, reason: str) -> Any:
        """A rollback asked for through the service (``POST /admin/rollback``)."""
        from mlre.track.releases import rollback

        record = rollback(self.name, actor=actor, reason=reason, audit=self.audit)
        self.refresh()
        return record


#: Keys remembered per trial before the count starts again (a bound on memory).
MAX_KEYS = 50_000


def in_share(key: str, share: float) -> bool:
    """Whether ``key`` falls in a ``share`` of traffic; the same key always falls the same way."""
    if share <= 0:
        return False
    bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2.0**64
    return bucket < share


def _version(slot: Any) -> str | None:
    return None if slot is None else slot.version


def _task(challenger: Any) -> Task:
    if isinstance(challenger, ShadowWorker):
        challenger.ready.wait(timeout=120)  # its task is known once its model is loaded
    return challenger.task
