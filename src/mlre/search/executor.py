"""Where the search's fits run: threads of this process, or tasks on a Ray cluster.

Both backends take the same calls: place the shared data once (``put``), submit a function of
it (``submit``), wait for some of what was submitted (``wait``) and collect it (``result``). The
driver does everything else: it decides what to fit, scores, ensembles and logs to MLflow, so a
run's records are the same whichever backend fitted its models.

A Ray task whose worker process dies surfaces as :class:`WorkerLost`, so that the search can
retry the fit once and otherwise record the trial as failed; an exception raised by the fit
itself is raised again as it was.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mlre.errors import InputError
from mlre.models.families import Family, n_workers

log = logging.getLogger(__name__)

#: Environment variable naming a Ray cluster when ``--ray`` is not given.
RAY_ENV = "MLRE_RAY_ADDRESS"


class WorkerLost(RuntimeError):
    """The process running a fit died (killed, out of memory, its node lost)."""


class Executor(ABC):
    """The calls the search makes of a backend."""

    name = "local"
    #: Fits that run at once.
    slots = 1
    #: Whether a running fit can be stopped (a Ray task can; a thread cannot).
    can_cancel = False
    #: Whether fits run in this process (and can call what it has loaded, an idea file's module).
    in_process = True

    def cost(self, family: Family) -> int:
        """Slots one fit of ``family`` occupies."""
        return 1

    def put(self, value: Any) -> Any:
        """``value`` placed where every fit can read it (once per search)."""
        return value

    @abstractmethod
    def submit(self, fn: Callable[..., Any], *args: Any, deadline: float | None = None) -> Any:
        """Start ``fn(*args)`` (with ``deadline=``, a ``time.monotonic()`` value of this
        process, when given); returns a handle for ``wait`` and ``result``."""

    @abstractmethod
    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        """The handles among ``handles`` that finished within ``timeout`` seconds (at least one
        unless the time ran out)."""

    @abstractmethod
    def result(self, handle: Any) -> Any:
        """What the function returned; raises what it raised, or :class:`WorkerLost`."""

    @abstractmethod
    def cancel(self, handle: Any) -> None:
        """Stop a running fit, when the backend can."""

    @abstractmethod
    def close(self) -> None:
        """Release what the executor started."""

    def describe(self) -> dict[str, Any]:
        """What a run records about where it ran."""
        return {"backend": self.name, "slots": self.slots}


class LocalExecutor(Executor):
    """Threads of this process (every family's fit releases the GIL in its native code, and
    threads share the training data instead of holding a copy per worker)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.slots = max(1, workers or n_workers())
        self._pool = cf.ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="mlre-fit")

    def cost(self, family: Family) -> int:
        # a family that parallelises its own fit takes every worker's threads for one fold
        return 1 if family.fold_parallel else self.slots

    def submit(self, fn: Callable[..., Any], *args: Any, deadline: float | None = None) -> Any:
        if deadline is None:
            return self._pool.submit(fn, *args)
        return self._pool.submit(fn, *args, deadline=deadline)

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        done, _ = cf.wait(handles, timeout=max(0.0, timeout), return_when=cf.FIRST_COMPLETED)
        return list(done)

    def result(self, handle: Any) -> Any:
        return handle.result()

    def cancel(self, handle: Any) -> None:
        handle.cancel()  # stops a fit still queued; one already running finishes

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _run_remote(fn: Callable[..., Any], wall_deadline: float | None, *args: Any) -> Any:
    """A fit on a Ray worker: one core's threads, the driver's deadline on this node's clock.
    (The arguments travel unpacked: Ray resolves object references only at the top level.)"""
    os.environ["MLRE_WORKERS"] = "1"
    os.environ["MLRE_THREADS"] = "1"
    if wall_deadline is None:
        return fn(*args)
    return fn(*args, deadline=time.monotonic() + (wall_deadline - time.time()))


def _remote_version() -> str:
    from mlre.version import __version__

    return __version__


def _warm_up() -> None:
    """Import what the first fits need (scikit-learn, pandas, the zoo, LightGBM), so that a
    worker's start is not taken for a slow first trial."""
    import lightgbm  # noqa: F401

    import mlre.search.trial  # noqa: F401


class RayExecutor(Executor):
    """Ray tasks of one CPU each; the data is placed in the object store once per search."""

    name = "ray"
    can_cancel = True
    in_process = False

    def __init__(self, address: str) -> None:
        try:
            import ray
        except ImportError as err:
            raise InputError(
                "--ray needs Ray, which is not installed",
                hint="pip install 'mlre[ray]'",
            ) from err
        self._ray = ray
        self._started = False
        self.address = address
        if not ray.is_initialized():
            self._connect(address)
            self._started = True
        self.slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._task = ray.remote(num_cpus=1, max_retries=0)(_run_remote)
        self._check_version()
        # one task per CPU starts every worker now: the search's pace is then that of fits
        ray.get([self._task.remote(_warm_up, None) for _ in range(self.slots)])

    def _connect(self, address: str) -> None:
        ray = self._ray
        _check_reachable(address)
        options: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.WARNING,
        }
        try:
            if address == "auto" and not os.environ.get("RAY_ADDRESS"):
                # a Ray of this machine's cores, started for this run and stopped after it
                ray.init(num_cpus=n_workers(), **options)
            else:
                ray.init(address=address, **options)
        except (ConnectionError, ValueError, RuntimeError) as err:
            raise InputError(
                f"cannot reach the Ray cluster at {address}: {err}",
                hint="check the address (ray://HOST:10001, or auto for a Ray on this machine) and "
                "that the cluster is up (`ray status`)",
            ) from err

    def _check_version(self) -> None:
        from mlre.version import __version__

        remote = self._ray.get(self._ray.remote(num_cpus=0)(_remote_version).remote())
        if remote != __version__:
            self.close()
            raise InputError(
                f"the Ray workers run mlre {remote}, this driver mlre {__version__}",
                hint="install the same mlre version on every node of the cluster",
            )

    def put(self, value: Any) -> Any:
        return self._ray.put(value)

    def submit(self, fn: Callable[..., Any], *args: Any, deadline: float | None = None) -> Any:
        wall = None if deadline is None else time.time() + (deadline - time.monotonic())
        return self._task.remote(fn, wall, *args)

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        done, _ = self._ray.wait(handles, num_returns=1, timeout=max(0.0, timeout))
        if done:  # everything else that is already finished too, without waiting again
            more, _ = self._ray.wait(
                [h for h in handles if h not in done], num_returns=len(handles) - 1, timeout=0
            ) if len(handles) > 1 else ([], [])  # fmt: skip
            done = [*done, *more]
        return done

    def result(self, handle: Any) -> Any:
        exc = self._ray.exceptions
        try:
            return self._ray.get(handle)
        except exc.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, BaseException):
                raise cause from None
            raise RuntimeError(str(err)) from None
        except exc.TaskCancelledError as err:
            raise WorkerLost("the fit was cancelled") from err
        except exc.RayError as err:  # the worker or its node died, or its result was lost
            raise WorkerLost(f"{type(err).__name__}: {str(err).splitlines()[0][:200]}") from err

    def cancel(self, handle: Any) -> None:
        try:
            self._ray.cancel(handle, force=True)
        except Exception as err:  # already finished, or its worker already gone
            log.debug("could not cancel a Ray task: %s", err)

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
            self._started = False

    def describe(self) -> dict[str, Any]:
        nodes = [n for n in self._ray.nodes() if n.get("Alive")]
        return {"backend": "ray", "slots": self.slots, "nodes": len(nodes)}


def _check_reachable(address: str) -> None:
    """Fail fast on an address nobody answers at (Ray itself waits minutes for its GCS)."""
    import socket

    if address == "auto" or address.startswith("local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=5):
            return
    except (OSError, ValueError) as err:
        raise InputError(
            f"cannot reach the Ray cluster at {address}: {err}",
            hint="check the address (ray://HOST:10001 for Ray Client, HOST:6379 on the cluster, "
            "or auto for a Ray on this machine) and that the cluster is up (`ray status`)",
        ) from err


def ray_address(option: str | None) -> str | None:
    """The Ray address a command should use: ``--ray``, else ``MLRE_RAY_ADDRESS``, else none."""
    return option or os.environ.get(RAY_ENV) or None


@contextmanager
def executor_for(ray: str | None) -> Iterator[Executor]:
    """A local executor, or a Ray one for ``ray`` (``auto`` or a cluster address); closed after."""
    executor: Executor = RayExecutor(ray) if ray else LocalExecutor()
    try:
        yield executor
    finally:
        executor.close()
