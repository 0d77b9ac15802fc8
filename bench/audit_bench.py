"""Benchmark ``mlre audit`` against ydata-profiling (minimal mode) on a large synthetic CSV.

Run with the project's interpreter (mlre must be importable)::

    .venv/bin/python bench/audit_bench.py                 # 1,000,000 rows x 50 columns
    .venv/bin/python bench/audit_bench.py --rows 100000   # a quick try

What it does:

1. Generates a deterministic table (numpy seed): normal, lognormal and count columns, about a
   quarter categorical string columns (3 to 1,000 levels), two boolean columns, 1-20 % missing
   values in a subset of columns, and a binary target ``y`` that depends on a few features. It is
   written once as CSV to ``bench/.work/`` and reused while the parameters stay the same.
2. Times ``mlre.audit(path, target="y", track=False)`` in a fresh child process (load + audit),
   then once more with MLflow tracking on, in an empty temporary working directory.
3. Times, in the separate virtualenv ``bench/.peer-venv/`` (created from
   ``bench/requirements-peer.txt`` when missing), ``pandas.read_csv`` alone and
   ``pandas.read_csv`` + ``ydata_profiling.ProfileReport(df, minimal=True).get_description()``.
   When the peer cannot finish the full table within ``--peer-timeout`` it is rerun on two
   random samples of rows and its full-size time is extrapolated linearly in rows (clearly
   labelled as extrapolated).
4. Prints a table (wall time, peak RSS, speed-up) and whether the targets are met, and writes
   the same results as JSON and Markdown to ``bench/.work/``.

Every measured child is a separate process, so each number includes interpreter start-up and
imports: what a person running the command waits for. Linux only (/proc, ``ru_maxrss`` in KiB).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from machine import busy_cores, busy_ticks  # the module beside this script

if TYPE_CHECKING:
    import pyarrow as pa

BENCH_DIR = Path(__file__).resolve().parent
WORK_DIR = BENCH_DIR / ".work"
PEER_VENV = BENCH_DIR / ".peer-venv"
PEER_REQUIREMENTS = BENCH_DIR / "requirements-peer.txt"

#: Bump when the generator changes, so that cached CSV files are not reused by mistake.
GENERATOR_VERSION = 2
#: The line a measured child prints (last) with its own facts, as JSON.
RESULT_MARK = "BENCH_RESULT "
#: Generous ceiling for an mlre child; the target is 30 s.
MLRE_TIMEOUT_S = 1800.0

TARGET_SECONDS = 30.0
TARGET_RSS_MB = 4000.0  # 4 GB, decimal: 4,000,000,000 bytes
TARGET_SPEEDUP = 10.0
#: Cores kept busy by other processes above which a run counts as disturbed.
BUSY_THRESHOLD = 0.25

CATEGORY_STEMS = (
    "region", "channel", "plan", "device", "brand", "segment",
    "store", "campaign", "agent", "source", "model", "city",
)  # fmt: skip

# --------------------------------------------------------------------------- measured children
# Each child is a `python -c` program; its last stdout line is RESULT_MARK + JSON. The timings
# inside the child split the wall time into imports and work; the bench reports wall time.

MLRE_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import mlre
t1 = time.perf_counter()
report = mlre.audit(sys.argv[1], target="y", track=sys.argv[2] == "1")
t2 = time.perf_counter()
from importlib import metadata
print("@MARK@" + json.dumps({
    "import_s": t1 - t0, "work_s": t2 - t1, "audit_seconds": report.seconds,
    "rows": report.n_rows, "cols": report.n_cols, "exit_code": report.exit_code,
    "findings": report.findings.counts(), "run_id": report.run_id,
    "versions": {p: metadata.version(p) for p in ("mlre", "pandas", "pyarrow", "numpy")},
}))
""".replace("@MARK@", RESULT_MARK)

PEER_READ_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import pandas as pd
t1 = time.perf_counter()
df = pd.read_csv(sys.argv[1])
t2 = time.perf_counter()
print("@MARK@" + json.dumps({
    "import_s": t1 - t0, "work_s": t2 - t1, "read_s": t2 - t1, "rows": len(df),
    "cols": df.shape[1], "versions": {"pandas": pd.__version__},
}))
""".replace("@MARK@", RESULT_MARK)

PEER_PROFILE_CHILD = """
import json, sys, time, warnings
warnings.filterwarnings("ignore")
t0 = time.perf_counter()
import pandas as pd
import ydata_profiling
from ydata_profiling import ProfileReport
t1 = time.perf_counter()
df = pd.read_csv(sys.argv[1])
t2 = time.perf_counter()
# get_description() computes every statistic of the report without rendering HTML.
description = ProfileReport(df, minimal=True, progress_bar=False).get_description()
t3 = time.perf_counter()
print("@MARK@" + json.dumps({
    "import_s": t1 - t0, "work_s": t3 - t1, "read_s": t2 - t1, "profile_s": t3 - t2,
    "rows": len(df), "cols": df.shape[1], "variables": len(description.variables),
    "versions": {"ydata-profiling": ydata_profiling.__version__, "pandas": pd.__version__},
}))
""".replace("@MARK@", RESULT_MARK)


@dataclass
class Child:
    """How one measured child process went."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    others_cores: float | None
    returncode: int
    timed_out: bool
    payload: dict[str, Any] | None
    stderr_tail: str


def wait_for_quiet(max_wait_s: float, threshold: float = BUSY_THRESHOLD) -> None:
    """Wait (up to ``max_wait_s``) until other processes keep under ``threshold`` cores busy.

    On a shared machine a test suite running next to the bench would slow whichever system
    happens to run at the same time; the results also record how busy the machine was.
    """
    deadline = time.monotonic() + max_wait_s
    load = busy_cores()
    if load is None or load < threshold:
        return
    print(f"  waiting for the machine to be idle ({load:.1f} cores busy) ...", flush=True)
    while load is not None and load >= threshold and time.monotonic() < deadline:
        load = busy_cores(2.0)
    if load is not None and load >= threshold:
        print(f"  still {load:.1f} cores busy: measuring anyway (see 'other load')", flush=True)


def run_child(
    argv: list[str], *, timeout_s: float, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Child:
    """Run ``argv``, returning its wall time and its own peak resident memory.

    Peak memory comes from ``os.wait4``, which returns the resource usage of exactly the child
    it reaps. ``getrusage(RUSAGE_CHILDREN)`` would not do: its ``ru_maxrss`` is the largest over
    every child waited for so far, so a small run after a large one would report the large one.
    On Linux the figure covers the child and any descendants it waited for (joblib workers, a
    ``git`` call), and it is also filled in for a child killed at the timeout. Wall time runs
    from just before the fork to the reap, polled every 20 ms. CPU time (user + system) comes
    from the same rusage; the machine's busy ticks over the run, less the child's own CPU time,
    tell how much other processes competed with it ("other load", in cores).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        ticks = busy_ticks()
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            start_new_session=True,  # its own process group, so a timeout ends its workers too
        )  # fmt: skip
        deadline = started + timeout_s
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                timed_out = True
                with contextlib.suppress(ProcessLookupError):  # it may have just ended
                    os.killpg(proc.pid, signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - started
        ticks_after = busy_ticks()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    payload = None
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            payload = json.loads(line[len(RESULT_MARK) :])
            break
    cpu = usage.ru_utime + usage.ru_stime
    others = None
    if ticks is not None and ticks_after is not None:
        machine_busy = (ticks_after - ticks) / os.sysconf("SC_CLK_TCK")
        others = max(0.0, (machine_busy - cpu) / wall)
    return Child(
        wall_s=wall, cpu_s=cpu, peak_rss_mb=usage.ru_maxrss * 1024 / 1e6,  # KiB on Linux
        others_cores=others, returncode=proc.returncode, timed_out=timed_out, payload=payload,
        stderr_tail="\n".join(stderr.strip().splitlines()[-15:]),
    )  # fmt: skip


# --------------------------------------------------------------------------- the data


def column_plan(cols: int) -> dict[str, int]:
    """How many columns of each kind a table of ``cols`` columns (target included) gets."""
    if cols < 8:
        raise SystemExit("--cols must be at least 8")
    features = cols - 1
    n_cat = max(1, round(features * 12 / 49))  # 12 of 49 features at the default width
    n_bool = 2
    n_num = features - n_cat - n_bool
    n_normal = -(-n_num * 2 // 5)  # 40 %, rounded up
    n_lognormal = max(1, round(n_num * 0.3))
    n_count = n_num - n_normal - n_lognormal
    if n_count < 1:  # the target needs one column of each numeric kind
        n_normal, n_count = n_normal - 1, 1
    return {
        "normal": n_normal, "lognormal": n_lognormal, "count": n_count,
        "categorical": n_cat, "boolean": n_bool,
    }  # fmt: skip


def make_table(rows: int, cols: int, seed: int) -> pa.Table:
    """The synthetic table: the same ``rows``, ``cols`` and ``seed`` give the same values."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)
    plan = column_plan(cols)
    values: dict[str, np.ndarray] = {}
    for i in range(plan["normal"]):
        loc, scale = rng.uniform(-5, 50), rng.uniform(0.5, 20)
        values[f"num_{i:02d}"] = np.round(rng.normal(loc, scale, rows), 3)
    for i in range(plan["lognormal"]):
        mu, sigma = rng.uniform(0, 4), rng.uniform(0.3, 1.2)
        values[f"amount_{i:02d}"] = np.round(rng.lognormal(mu, sigma, rows), 2)
    for i in range(plan["count"]):
        values[f"count_{i:02d}"] = rng.poisson(rng.uniform(0.5, 40), rows).astype(np.int64)
    cardinalities = np.geomspace(3, 1000, plan["categorical"]).round().astype(int)
    codes: dict[str, np.ndarray] = {}
    levels: dict[str, list[str]] = {}
    for i, k in enumerate(cardinalities):
        name = f"{CATEGORY_STEMS[i % len(CATEGORY_STEMS)]}_{i:02d}"
        weights = 1.0 / np.arange(1, k + 1) ** rng.uniform(0.3, 1.1)  # Zipf-like frequencies
        codes[name] = rng.choice(k, size=rows, p=weights / weights.sum())
        levels[name] = [f"{name.split('_')[0]}_{j:04d}" for j in range(k)]
    for i, p in enumerate((0.3, 0.7)[: plan["boolean"]]):
        values[f"flag_{i:02d}"] = rng.random(rows) < p

    # The target: a logistic model of a few features, before any value goes missing.
    def z(x: np.ndarray) -> np.ndarray:
        return np.asarray((x - x.mean()) / (x.std() or 1.0), dtype=float)

    first_cat = next(iter(codes))
    effect = rng.normal(0.0, 0.8, len(levels[first_cat]))
    logit = (
        0.9 * z(values["num_00"]) + 0.6 * z(np.log(values["amount_00"] + 1e-3))
        - 0.5 * z(values["count_00"].astype(float)) + effect[codes[first_cat]]
        + 0.8 * values["flag_00"] - 0.8
    )  # fmt: skip
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)

    names = [*values, *codes]
    n_missing = round(len(names) * 0.4)
    with_missing = set(rng.choice(names, size=n_missing, replace=False).tolist())
    arrays: dict[str, pa.Array] = {}
    for name in names:
        mask = None
        if name in with_missing:
            mask = rng.random(rows) < rng.uniform(0.01, 0.20)
        if name in codes:
            arr = pa.array(levels[name], pa.string()).take(pa.array(codes[name]))
            if mask is not None:
                arr = pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), arr)
            arrays[name] = arr
        else:
            arrays[name] = pa.array(values[name], mask=mask)
    arrays["y"] = pa.array(y)
    return pa.table(arrays)


def csv_name(rows: int, cols: int, seed: int, sample: int | None = None) -> str:
    """The file name that encodes every parameter of the data."""
    tail = f"_sample{sample}" if sample else ""
    return f"audit_r{rows}_c{cols}_s{seed}_g{GENERATOR_VERSION}{tail}.csv"


def write_csv(table: pa.Table, path: Path) -> None:
    """Write ``table`` atomically (a half-written file is never mistaken for a cached one).

    Like ``DataFrame.to_csv``, the most common writer of such files, nothing is quoted: no value
    holds a comma, a quote or a line break.
    """
    import pyarrow.csv as pacsv

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".csv.partial")
    pacsv.write_csv(table, partial, pacsv.WriteOptions(quoting_style="none", batch_size=65536))
    partial.replace(path)


def ensure_data(rows: int, cols: int, seed: int, sample: int | None) -> tuple[Path, list[Path]]:
    """The full CSV and, when ``sample`` < ``rows``, random-row samples of ``sample // 2`` and
    ``sample`` rows (the smaller one a subset of the larger), each made if missing."""
    full = WORK_DIR / csv_name(rows, cols, seed)
    sizes = [sample // 2, sample] if sample and sample < rows else []
    parts = [WORK_DIR / csv_name(rows, cols, seed, n) for n in sizes]
    if full.exists() and all(p.exists() for p in parts):
        print(f"reusing {full.relative_to(BENCH_DIR.parent)}")
        return full, parts
    print(f"generating {rows:,} rows x {cols} columns (seed {seed}) ...", flush=True)
    started = time.perf_counter()
    table = make_table(rows, cols, seed)
    if not full.exists():
        write_csv(table, full)
    if sizes:
        import numpy as np

        picked = np.random.default_rng(seed + 1).choice(rows, sizes[-1], replace=False)
        for n, part in zip(sizes, parts, strict=True):
            if not part.exists():
                write_csv(table.take(np.sort(picked[:n])), part)
    print(f"  wrote {full.name} ({full.stat().st_size / 1e6:,.0f} MB) "
          f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
    return full, parts


def warm_cache(path: Path) -> None:
    """Read the file once so that every measured run starts from the page cache alike."""
    with path.open("rb") as fh:
        while fh.read(16 << 20):
            pass


# --------------------------------------------------------------------------- the peer venv


def peer_python() -> Path:
    """The peer virtualenv's interpreter, creating the venv and installing the pins if needed.

    A stamp file holds the sha256 of requirements-peer.txt; a change of pins reinstalls.
    """
    python = PEER_VENV / "bin" / "python"
    stamp = PEER_VENV / ".requirements.sha256"
    wanted = hashlib.sha256(PEER_REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return python
    if not python.exists():
        print(f"creating {PEER_VENV.relative_to(BENCH_DIR.parent)} ...", flush=True)
        base = shutil.which("python3") or sys.executable
        subprocess.run([base, "-m", "venv", str(PEER_VENV)], check=True)
    print(f"installing {PEER_REQUIREMENTS.name} into the peer venv ...", flush=True)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "-r", str(PEER_REQUIREMENTS)], check=True)
    stamp.write_text(wanted + "\n")
    return python


def peer_env() -> dict[str, str]:
    """The peer's environment: no usage analytics call home, no GUI backend for matplotlib."""
    return {**os.environ, "YDATA_PROFILING_NO_ANALYTICS": "1", "MPLBACKEND": "Agg"}


# --------------------------------------------------------------------------- the results


@dataclass
class Row:
    """One line of the results table."""

    system: str
    rows: int
    wall_s: float | None
    work_s: float | None
    cpu_s: float | None
    peak_rss_mb: float | None
    status: str = "ok"
    others_cores: float | None = None  # cores other processes kept busy during the run
    full_size_s: float | None = None  # this system's time for the whole table, for the speed-up
    extrapolated: bool = False
    facts: dict[str, Any] = field(default_factory=dict)


def row_of(system: str, child: Child, rows: int) -> Row:
    """A results row from a finished (or failed, or timed-out) child."""
    payload = child.payload or {}
    if child.timed_out:
        status = f"timed out after {child.wall_s:.0f} s"
    elif child.returncode != 0 or child.payload is None:
        status = f"failed (exit {child.returncode})"
    else:
        status = "ok"
    ok = status == "ok"
    return Row(
        system=system, rows=payload.get("rows", rows), wall_s=child.wall_s,
        work_s=payload.get("work_s"), cpu_s=child.cpu_s, peak_rss_mb=child.peak_rss_mb,
        status=status, others_cores=child.others_cores, full_size_s=child.wall_s if ok else None,
        facts=payload,
    )  # fmt: skip


def extrapolate(samples: list[Row], full_rows: int) -> Row:
    """The peer's full-size time estimated from its runs on samples (smallest first).

    Start-up and imports (wall minus work of the largest sample) are counted once. The work is
    fitted as ``a + b * rows`` through the two samples: a fixed cost per table (per column
    set-up) plus a cost per row. With one sample, or a fit that does not grow with rows, the
    work is scaled in proportion to rows instead, which overstates the full-size time (and so
    the speed-up) when the fixed part is large.
    """
    big = samples[-1]
    assert big.wall_s is not None and big.work_s is not None
    fixed = big.wall_s - big.work_s
    proportional = big.work_s * full_rows / big.rows
    work, method = proportional, f"work x {full_rows / big.rows:g} (proportional to rows)"
    if len(samples) > 1 and samples[0].work_s is not None and big.rows > samples[0].rows:
        slope = (big.work_s - samples[0].work_s) / (big.rows - samples[0].rows)
        if slope > 0:
            intercept = big.work_s - slope * big.rows
            work = intercept + slope * full_rows
            method = f"work = {intercept:.2f} s + {slope * 1e6:.2f} s per million rows"
    sizes = " + ".join(f"{r.rows:,}" for r in samples)
    return Row(
        system=f"{big.system.split(' (')[0]} (EXTRAPOLATED from {sizes}-row samples)",
        rows=full_rows, wall_s=fixed + work, work_s=work, cpu_s=None, peak_rss_mb=None,
        status="extrapolated", full_size_s=fixed + work, extrapolated=True,
        facts={"samples": [r.rows for r in samples], "fixed_s": fixed, "method": method,
               "proportional_wall_s": fixed + proportional},
    )  # fmt: skip


def machine_info(peer: Path | None) -> dict[str, Any]:
    """Cores, memory, CPU model, OS and Python versions."""
    info: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_count": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
        "platform": platform.platform(), "python": platform.python_version(),
        "busy_cores_at_start": busy_cores(),
    }  # fmt: skip
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) * 1024 / 1e9, 1)
    cpu_max = Path("/sys/fs/cgroup/cpu.max")
    if cpu_max.exists():
        quota, _, period = cpu_max.read_text().partition(" ")
        if quota != "max":
            info["cgroup_cpus"] = round(int(quota) / int(period), 2)
    git = subprocess.run(
        ["git", "-C", str(BENCH_DIR), "describe", "--always", "--dirty", "--abbrev=12"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if git.returncode == 0:
        info["mlre_commit"] = git.stdout.strip()  # "-dirty": uncommitted changes were measured
    if peer is not None:
        version = subprocess.run(
            [str(peer), "-c", "import platform; print(platform.python_version())"],
            capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip
        info["peer_python"] = version
    return info


def speedup(row: Row, mlre_s: float | None) -> str:
    """How many times faster mlre (audit, tracking off) is than ``row``'s system, full size."""
    if row.full_size_s is None or not mlre_s or row.system.startswith("mlre"):
        return ""
    label = f"{row.full_size_s / mlre_s:.1f}x"
    return label + " (extrapolated)" if row.extrapolated else label


HEADER = [
    "system", "rows profiled", "wall (s)", "work (s)", "CPU (s)", "peak RSS (MB)",
    "other load (cores)", "mlre speed-up", "status",
]  # fmt: skip
NUMERIC_COLUMNS = range(1, 8)


def table_cells(rows: list[Row], mlre_s: float | None) -> list[list[str]]:
    """The cells of the results table, as text (columns as in HEADER)."""

    def num(value: float | None, fmt: str, missing: str = "") -> str:
        return missing if value is None else format(value, fmt)

    return [
        [
            r.system, f"{r.rows:,}", num(r.wall_s, ".1f"), num(r.work_s, ".1f"),
            num(r.cpu_s, ".1f"), num(r.peak_rss_mb, ",.0f", "n/a"), num(r.others_cores, ".2f"),
            speedup(r, mlre_s), r.status,
        ]
        for r in rows
    ]  # fmt: skip


def notes(rows: list[Row]) -> list[str]:
    """Warnings that qualify the numbers."""
    out = []
    busy = [r for r in rows if r.others_cores is not None and r.others_cores > BUSY_THRESHOLD]
    if busy:
        names = ", ".join(f"{r.system} ({r.others_cores:.2f})" for r in busy)
        out.append(f"other processes competed for the CPU during: {names}; rerun on a quiet "
                   "machine for clean numbers")  # fmt: skip
    if any(r.extrapolated for r in rows):
        how = "; ".join(r.facts["method"] for r in rows if r.extrapolated)
        out.append("EXTRAPOLATED rows were not measured: the peer's work on the row samples, "
                   f"fitted linearly in rows ({how}), plus its start-up time once")  # fmt: skip
    return out


def verdicts(mlre: Row | None, peer: Row | None) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each target; met is None when it could not be judged."""
    ok = mlre is not None and mlre.status == "ok"
    wall = mlre.wall_s if ok and mlre else None
    rss = mlre.peak_rss_mb if ok and mlre else None
    out: list[tuple[str, str, bool | None]] = [
        (f"mlre audit < {TARGET_SECONDS:.0f} s", f"{wall:.1f} s" if wall else "n/a",
         wall < TARGET_SECONDS if wall else None),
        (f"mlre peak RSS < {TARGET_RSS_MB / 1000:.0f} GB", f"{rss:,.0f} MB" if rss else "n/a",
         rss < TARGET_RSS_MB if rss else None),
    ]  # fmt: skip
    faster = f"mlre >= {TARGET_SPEEDUP:.0f}x faster than ydata-profiling minimal"
    if peer is not None and peer.full_size_s and wall:
        ratio = peer.full_size_s / wall
        how = " (peer time extrapolated)" if peer.extrapolated else ""
        out.append((faster, f"{ratio:.1f}x{how}", ratio >= TARGET_SPEEDUP))
    else:
        out.append((faster, "n/a", None))
    return out


VERDICT = {True: "met", False: "NOT met", None: "not judged"}


def machine_line(info: dict[str, Any]) -> str:
    """The machine in one line."""
    peer = f" (peer venv {info['peer_python']})" if info.get("peer_python") else ""
    return (f"{info.get('cpu', '?')}; {info['usable_cores']} usable cores; "
            f"{info.get('memory_gb', '?')} GB RAM; Python {info['python']}{peer}; "
            f"{info['platform']}; mlre {info.get('mlre_commit', '?')}")  # fmt: skip


def print_results(
    info: dict[str, Any], rows: list[Row], checks: list[tuple[str, str, bool | None]],
    mlre_s: float | None,
) -> None:  # fmt: skip
    """The machine, the table, the notes and the verdicts, with Rich when it is installed."""
    cells = table_cells(rows, mlre_s)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEADER)]
        print(f"\nmachine: {machine_line(info)}  ({info['date']})\n")
        for line in [HEADER, *cells]:
            print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)))
        print()
        for note in notes(rows):
            print(f"note: {note}")
        for target, measured, met in checks:
            print(f"{target}: {measured} -> {VERDICT[met]}")
        return
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(f"\n[bold]machine:[/] {machine_line(info)}  ({info['date']})")
    table = Table(title="mlre audit vs ydata-profiling (minimal)", title_justify="left")
    for i, h in enumerate(HEADER):
        table.add_column(h, justify="right" if i in NUMERIC_COLUMNS else "left")
    for c in cells:
        table.add_row(*c)
    console.print(table)
    for note in notes(rows):
        console.print(f"[yellow]note:[/] {note}")
    style = {True: "green", False: "bold red", None: "yellow"}
    for target, measured, met in checks:
        console.print(f"{target}: {measured} -> [{style[met]}]{VERDICT[met]}[/]")


def markdown(
    info: dict[str, Any], rows: list[Row], checks: list[tuple[str, str, bool | None]],
    mlre_s: float | None,
) -> str:  # fmt: skip
    """The results as Markdown, for bench/README.md."""
    align = ["---:" if i in NUMERIC_COLUMNS else "---" for i in range(len(HEADER))]
    lines = [
        f"Run on {info['date']}: {machine_line(info)}.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join(align) + "|",
        *("| " + " | ".join(c) + " |" for c in table_cells(rows, mlre_s)),
        "",
        *(f"Note: {n}." for n in notes(rows)),
        "",
        "| target | measured | verdict |",
        "|---|---:|---|",
        *(f"| {t} | {m} | {VERDICT[v]} |" for t, m, v in checks),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows in the table (1,000,000)")
    ap.add_argument("--cols", type=int, default=50, help="columns, target included (50)")
    ap.add_argument("--seed", type=int, default=0, help="numpy seed of the data (0)")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of mlre audit (tracking off); the median is reported (1)",
    )
    ap.add_argument(
        "--peer-timeout",
        type=float,
        default=600.0,
        help="seconds the peer may take on the full table before it is stopped (600)",
    )
    ap.add_argument(
        "--peer-sample",
        type=int,
        default=100_000,
        help="rows of the larger sample the peer is rerun on after a timeout; a second one has half (100,000)",
    )
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="seconds to wait, before each run, for other processes to leave the CPU idle (120)",
    )
    ap.add_argument("--skip-peer", action="store_true", help="measure mlre only")
    return ap.parse_args(argv)


def measure(
    system: str, argv: list[str], *, rows: int, timeout_s: float, quiet_wait_s: float,
    cwd: Path | None = None, env: dict[str, str] | None = None,
) -> Row:  # fmt: skip
    """Wait for a quiet machine, run one measured child and turn it into a results row."""
    print(f"{system} ...", flush=True)
    wait_for_quiet(quiet_wait_s)
    child = run_child(argv, timeout_s=timeout_s, cwd=cwd, env=env)
    row = row_of(system, child, rows)
    if row.status == "ok":
        print(f"  {row.wall_s:.1f} s, {row.peak_rss_mb:,.0f} MB", flush=True)
    else:
        print(f"  {row.status}", flush=True)
        if child.stderr_tail and not child.timed_out:
            print("  " + child.stderr_tail.replace("\n", "\n  "), flush=True)
    return row


def median_row(runs: list[Row]) -> Row:
    """One row for repeated runs: median times, the largest memory and load."""
    ok = [r for r in runs if r.status == "ok"]
    if not ok:
        return runs[-1]
    system = ok[0].system.rsplit(" [", 1)[0]
    if len(ok) == 1:
        return replace(ok[0], system=system)
    return replace(
        ok[0], system=f"{system} (median of {len(ok)})",
        wall_s=statistics.median(r.wall_s or 0.0 for r in ok),
        work_s=statistics.median(r.work_s or 0.0 for r in ok),
        cpu_s=statistics.median(r.cpu_s or 0.0 for r in ok),
        peak_rss_mb=max(r.peak_rss_mb or 0.0 for r in ok),
        others_cores=max(r.others_cores or 0.0 for r in ok),
        full_size_s=statistics.median(r.wall_s or 0.0 for r in ok),
        facts={**ok[0].facts, "runs": [
            {"wall_s": r.wall_s, "work_s": r.work_s, "cpu_s": r.cpu_s,
             "peak_rss_mb": r.peak_rss_mb, "others_cores": r.others_cores}
            for r in ok
        ]},
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Generate the data, measure every system, print and save the results."""
    args = parse_args(argv)
    if args.rows < 1000 or args.repeat < 1:
        raise SystemExit("--rows must be at least 1000 and --repeat at least 1")
    sample = None if args.skip_peer else args.peer_sample
    data, samples = ensure_data(args.rows, args.cols, args.seed, sample)
    peer = None if args.skip_peer else peer_python()
    info = machine_info(peer)
    warm_cache(data)
    wait = args.quiet_wait

    mlre_row = median_row([
        measure(f"mlre audit (tracking off) [{i + 1}/{args.repeat}]",
                [sys.executable, "-c", MLRE_CHILD, str(data), "0"],
                rows=args.rows, timeout_s=MLRE_TIMEOUT_S, quiet_wait_s=wait)
        for i in range(args.repeat)
    ])  # fmt: skip
    results = [mlre_row]
    mlre_s = mlre_row.wall_s if mlre_row.status == "ok" else None

    with tempfile.TemporaryDirectory(prefix="mlre-bench-") as cwd:
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        results.append(measure(
            "mlre audit (tracking on, new MLflow DB)",
            [sys.executable, "-c", MLRE_CHILD, str(data), "1"],
            rows=args.rows, timeout_s=MLRE_TIMEOUT_S, quiet_wait_s=wait, cwd=Path(cwd), env=env,
        ))  # fmt: skip

    peer_row: Row | None = None
    if peer is not None:
        results.append(measure(
            "pandas.read_csv only (peer venv, reference)",
            [str(peer), "-c", PEER_READ_CHILD, str(data)],
            rows=args.rows, timeout_s=args.peer_timeout, quiet_wait_s=wait, env=peer_env(),
        ))  # fmt: skip
        peer_row = measure(
            "ydata-profiling minimal (full table)",
            [str(peer), "-c", PEER_PROFILE_CHILD, str(data)],
            rows=args.rows, timeout_s=args.peer_timeout, quiet_wait_s=wait, env=peer_env(),
        )  # fmt: skip
        results.append(peer_row)
        done: list[Row] = []
        for part in samples if peer_row.status != "ok" else []:
            n = int(part.stem.rsplit("sample", 1)[1])
            sample_row = measure(
                f"ydata-profiling minimal ({n:,}-row sample)",
                [str(peer), "-c", PEER_PROFILE_CHILD, str(part)],
                rows=n, timeout_s=args.peer_timeout, quiet_wait_s=wait, env=peer_env(),
            )  # fmt: skip
            sample_row.full_size_s = None  # never compared with mlre as if it were the table
            results.append(sample_row)
            if sample_row.status != "ok":
                break
            done.append(sample_row)
        if done:
            peer_row = extrapolate(done, args.rows)
            results.append(peer_row)

    checks = verdicts(mlre_row, peer_row)
    print_results(info, results, checks, mlre_s)
    stem = f"results_r{args.rows}_c{args.cols}_s{args.seed}"
    saved = {
        "machine": info, "args": vars(args), "data": str(data),
        "rows": [asdict(r) for r in results],
        "targets": [{"target": t, "measured": m, "met": v} for t, m, v in checks],
    }  # fmt: skip
    (WORK_DIR / f"{stem}.json").write_text(json.dumps(saved, indent=2) + "\n")
    (WORK_DIR / f"{stem}.md").write_text(markdown(info, results, checks, mlre_s))
    print(f"\nsaved bench/.work/{stem}.json and bench/.work/{stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
