"""Where the search keeps its candidates' fitted pipelines while it goes on: on disk, one pickle
per pipeline, read back for the final ensemble; and handing freed memory back to the system."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import pickle
from typing import Any

from mlre.search.trial import StoredPipelines


class Spilled:
    """A candidate's fitted pipelines, written to the search's scratch folder while they wait
    for the final ensemble (as AutoGluon keeps its models on disk): the search then holds in
    memory only the trial it is fitting, not every candidate the ensemble may still use.

    Each pipeline is a pickle of its own: an unpickler keeps every object it built until the
    end of its load, and a forest's trees copy their arrays on the way in, so loading all folds
    in one call held twice the candidate's size (96 MB for a 46 MB forest); one fold at a time
    holds one fold's copy."""

    __slots__ = ("count", "path")

    def __init__(self, path: str, pipelines: list[Any]) -> None:
        with open(path, "wb") as f:
            for pipeline in pipelines:
                pickle.dump(pipeline, f, protocol=pickle.HIGHEST_PROTOCOL)
        self.path, self.count = path, len(pipelines)

    def load(self) -> list[Any]:
        with open(self.path, "rb") as f:
            return [pickle.load(f) for _ in range(self.count)]

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            os.remove(self.path)


def loaded(pipelines: list[Any] | StoredPipelines | None) -> list[Any]:
    """A candidate's pipelines, in memory (read back if they were written out)."""
    if pipelines is None:  # the search asks only for candidates that have them
        raise RuntimeError("a candidate kept for the ensemble lost its pipelines")
    return pipelines if isinstance(pipelines, list) else pipelines.load()


def release_memory() -> None:
    """Hand memory freed by the last trial back to the operating system.

    glibc keeps freed blocks of a large heap for reuse, so the process would stay at the size of
    its largest trial; ``malloc_trim`` returns them. Elsewhere this only collects garbage.
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
