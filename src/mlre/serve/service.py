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

from mlre.serve.guard import TrialGuard
from mlre.serve.metrics import ServiceMetrics
from mlre.serve.predlog import LoggedPrediction, PredictionLog
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
    api_key: str | None = None
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


class Service:
    """One registered model served with its champion and, on trial, its challenger."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.name = config.model
        self.metrics = ServiceMetrics()
        self.predictions = PredictionLog(
            config.prediction_log, sample=config.log_sample, retention_days=config.retention_days
        )
        self.audit = AuditLog(config.audit_log)
        self.state = State()
        self.problems: dict[str, str] = {}  # version -> why it is not served
        self._refresh_lock = threading.Lock()
        self._rollback_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._shadow_pending: dict[str, tuple[State, pd.DataFrame, list[Any], float]] = {}
        self._shadow_lock = threading.Lock()
        self._arrived = 0  # requests between arrival and answer, on the event loop

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Service:
        """Load what the registry says, then follow it."""
        self.predictions.start()
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
        from mlre.track.releases import read_release

        with self._refresh_lock:
            release = read_release(self.name)
            old = self.state
            champion = load_slot(self.name, release.serving, old, self.problems)
            challenger: Any = None
            mode = release.mode
            version = release.challenger
            if version and version != release.serving and version not in self.problems:
                # a canary answers callers, in this process; a shadow runs in its own
                if mode == "canary":
                    challenger = load_slot(self.name, version, old, self.problems)
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
        canary = (
            state.challenger is not None
            and state.mode == "canary"
            and in_share(f"{self.name}:{key or request_id}", state.share)
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
            answer = self._try_challenger(state, frame, request_id, warnings)
            if answer is not None:
                return answer
        assert state.champion is not None
        t0 = time.perf_counter()
        try:
            out, error = state.champion.raw(X), None
        except Exception as err:
            out, error = None, err
        seconds = time.perf_counter() - t0
        return self._answered(state, X, frame, request_id, warnings, out, seconds, error)

    async def predict_async(
        self, frame: pd.DataFrame, *, key: str | None = None, request_id: str | None = None
    ) -> Answer:
        """``predict`` for an event loop: the loop waits for the model's batch queue without a
        thread of its own in between (each hand-over between threads costs a request time)."""
        import asyncio

        state, X, frame, warnings, request_id, canary = self._route(frame, key, request_id)
        if canary:
            from starlette.concurrency import run_in_threadpool

            answer = await run_in_threadpool(
                self._try_challenger, state, frame, request_id, warnings
            )
            if answer is not None:
                return answer
        assert state.champion is not None
        batcher = state.champion.batcher
        # A lone request is predicted right here: handing it to the batch thread and back costs
        # two thread switches (~2 ms at one request in flight). Requests that arrived together
        # (each counted before the loop lets the next one run) go through the batch queue.
        self._arrived += 1
        try:
            await asyncio.sleep(0)
            alone = self._arrived == 1 and batcher.idle
            t0 = time.perf_counter()
            try:
                if alone:
                    out, error = batcher.predict(X), None
                else:
                    out, error = await asyncio.wrap_future(batcher.submit(X)), None
            except Exception as err:
                out, error = None, err
            seconds = time.perf_counter() - t0
        finally:
            self._arrived -= 1
        return self._answered(state, X, frame, request_id, warnings, out, seconds, error)

    def _try_challenger(
        self, state: State, frame: pd.DataFrame, request_id: str, warnings: list[str]
    ) -> Answer | None:
        slot, guard = state.challenger, state.guard
        assert slot is not None and guard is not None
        t0 = time.perf_counter()
        try:
            X = frame[slot.features]
            out = slot.raw(X)
        except Exception as err:  # the caller gets the champion's answer instead
            seconds = time.perf_counter() - t0
            self._observe(slot, CHALLENGER, request_id, frame, None, seconds, err)
            guard.challenger(False, seconds * 1000)
            self._judge(state)
            return None
        seconds = time.perf_counter() - t0
        self._observe(slot, CHALLENGER, request_id, X, out, seconds, None)
        guard.challenger(True, seconds * 1000)
        guard.answers("challenger", slot.answers(out))
        self._judge(state)
        return Answer(request_id, CHALLENGER, slot, out, warnings)

    def _mirror(
        self, state: State, frame: pd.DataFrame, request_id: str, champion: list[Any]
    ) -> None:
        """Send a copy of the request to the shadow worker; its answer is handled when it comes
        back, on the worker's reader thread, never on the caller's path."""
        worker = state.challenger
        if not isinstance(worker, ShadowWorker) or not worker.alive:
            return
        with self._shadow_lock:
            if len(self._shadow_pending) >= self.config.shadow_queue:
                self.metrics.shadow_dropped.labels(self.name).inc()
                return
            self._shadow_pending[request_id] = (state, frame, champion, time.perf_counter())
        if not worker.submit(request_id, frame):
            with self._shadow_lock:
                self._shadow_pending.pop(request_id, None)

    def _shadow_result(
        self,
        version: str,
        request_id: str,
        out: np.ndarray | None,
        error: str | None,
        seconds: float,
        timed: bool = True,
    ) -> None:
        """``seconds`` is the time of the worker's call that answered the request, shared by
        the requests it answered together; ``timed`` marks the one request that counts it."""
        with self._shadow_lock:
            pending = self._shadow_pending.pop(request_id, None)
        if pending is None:
            return
        state, frame, champion, _ = pending
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
        with self._rollback_lock:
            if self.state.challenger is not slot:
                return
            current = self.state
            self.state = State(current.champion, None, None, 0.0, None)
            self._gauges(current, self.state)
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
