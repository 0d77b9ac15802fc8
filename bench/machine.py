"""How busy the machine is: shared by the benchmark scripts beside this file."""

from __future__ import annotations

import os
import time
from pathlib import Path


def busy_ticks() -> int | None:
    """CPU ticks the whole machine spent busy since boot, from /proc/stat (Linux only)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle


def busy_cores(seconds: float = 1.0) -> float | None:
    """How many cores the machine kept busy over the next ``seconds``."""
    before = busy_ticks()
    time.sleep(seconds)
    after = busy_ticks()
    if before is None or after is None:
        return None
    return (after - before) / os.sysconf("SC_CLK_TCK") / seconds
