"""The search's clock: how much of the time left before a deadline a step may take."""

from __future__ import annotations

import time


def share_of_time_left(
    deadline: float, share: float = 1.0, *, floor: float = 0.0, now: float | None = None
) -> float:
    """Seconds: ``share`` of those left before ``deadline`` (a ``time.monotonic()`` value),
    never fewer than ``floor``."""
    now = time.monotonic() if now is None else now
    return max(floor, share * (deadline - now))
