"""Model versions as the service holds them: a loaded, hash-checked version (a slot), what
serves now in which role (the state, replaced whole), and the answer a caller gets."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlre.errors import MlreError
from mlre.serve.batching import MAX_QUEUE_BYTES, Batcher, warm_up
from mlre.serve.guard import TrialGuard
from mlre.spec import Task
from mlre.values import plain

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER, SHADOW = "champion", "challenger", "shadow"


class NotReady(MlreError):
    """No model version can answer yet."""


@dataclass(frozen=True)
class Slot:
    """One loaded, hash-checked model version, predicting through its own batch queue."""

    version: str
    model: Any
    sha256: str
    loaded_at: float
    batcher: Batcher = field(compare=False, repr=False)

    @classmethod
    def load(cls, version: str, model: Any, sha256: str, max_bytes: int = MAX_QUEUE_BYTES) -> Slot:
        """A slot for ``model``, warmed up and batching (``max_bytes`` queued at most)."""
        warm_up(model)  # before it serves: its first callers would pay for it
        slot = cls.__new__(cls)
        batcher = Batcher(lambda X: _raw(model, X), name=f"v{version}", max_bytes=max_bytes)
        cls.__init__(slot, version, model, sha256, time.time(), batcher)
        return slot

    @property
    def task(self) -> Task:
        return self.model.task

    @property
    def classes(self) -> list[Any] | None:
        return None if self.model.task == "regression" else list(self.model.classes_)

    @property
    def features(self) -> list[str]:
        return [c.name for c in self.model.contract.features]

    def raw(self, X: pd.DataFrame, timeout: float | None = None) -> np.ndarray:
        """Probabilities (classification) or values (regression), batched with other requests
        (``TimedOut`` after ``timeout`` seconds, when given)."""
        if timeout is None:
            return self.batcher(X)
        return self.batcher.predict_within(X, timeout, self.version)

    def close(self) -> None:
        """Stop batching (a request still holding the slot is answered directly)."""
        self.batcher.close()

    def answers(self, out: np.ndarray) -> list[Any]:
        """The label or value of each row, for logs and comparisons."""
        if self.model.task == "regression":
            return [float(v) for v in out]
        classes = self.classes or []
        return [plain(classes[int(k)]) for k in out.argmax(axis=1)]


@dataclass(frozen=True)
class State:
    """What serves now; replaced whole, never changed in place."""

    champion: Slot | None = None
    challenger: Slot | None = None
    mode: str | None = None
    share: float = 0.0
    guard: TrialGuard | None = None


@dataclass
class Answer:
    """A prediction for the caller."""

    request_id: str
    role: str
    slot: Slot
    output: np.ndarray
    warnings: list[str]


def load_slot(
    name: str,
    version: str | None,
    old: State,
    problems: dict[str, str],
    max_bytes: int = MAX_QUEUE_BYTES,
) -> Slot | None:
    """The slot of ``version`` of model ``name``: the one ``old`` already holds, else loaded from
    the registry; None (and the reason in ``problems``) for a version that cannot be served."""
    if version is None:
        return None
    for slot in (old.champion, old.challenger):
        if isinstance(slot, Slot) and slot.version == version:
            return slot
    if version in problems:
        return None
    from mlre.track.registry import load_model

    try:
        loaded = load_model(f"models:/{name}/{version}")
    except MlreError as err:
        problems[version] = str(err)
        log.error("%s version %s is not served: %s", name, version, err)
        return None
    return Slot.load(version, loaded.model, loaded.sha256, max_bytes)


def retire(old: State, new: State) -> None:
    """Close the slots of ``old`` that ``new`` no longer holds."""
    kept = {id(s) for s in (new.champion, new.challenger) if s is not None}
    for slot in (old.champion, old.challenger):
        if slot is not None and id(slot) not in kept:
            slot.close()


def logged_outputs(slot: Slot, out: np.ndarray) -> list[Any]:
    """``slot``'s raw output as the prediction log keeps it: values, or labels and probabilities."""
    if slot.task == "regression":
        return [float(v) for v in out]
    classes = [str(c) for c in slot.classes or []]
    return [
        {
            "prediction": plain((slot.classes or [])[int(row.argmax())]),
            "probabilities": dict(zip(classes, map(float, row), strict=True)),
        }
        for row in out
    ]


def _raw(model: Any, X: pd.DataFrame) -> np.ndarray:
    if model.task == "regression":
        return np.asarray(model.predict(X), dtype=float)
    return np.asarray(model.predict_proba(X), dtype=float)
