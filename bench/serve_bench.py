"""Serving latency and throughput, side by side: raw in-process predict, `mlre serve`,
`mlflow models serve` on the same registered model, and `mlre serve` with a challenger in shadow.

    .venv/bin/python bench/serve_bench.py                        # adult, 30 s model, c = 1, 8, 32
    .venv/bin/python bench/serve_bench.py --budget 60 --requests 2000

A model is trained once with `mlre run` (tracked, in bench/.work/serve/), registered twice (v1
champion, v2 the shadow challenger). Each server runs in its own process on a loopback port;
the load comes from another process (wrk when it is installed, else an asyncio httpx client)
sending single-row requests with 1, 8 and 32 in flight, after a warm-up. The servers stay up
while every system is measured in turn, ``--rounds`` times over (a busy minute of a shared machine
then falls on all alike); the table gives medians over rounds, and the targets compare systems
within a round (the median of the paired gaps and ratios). The raw floor is the
model's own predict on one row in a loop, in a child process too: on a pandas table typed as
`pd.DataFrame([record])` types it, and on the table of JSON values the service builds (the
smaller is the floor the targets use). Then paired blocks (``--blocks``): the raw floor, `mlre
serve` and a second `mlre serve` whose model (the same one, registered again) has a challenger in
shadow throughout and MLflow's server take turns at c=1 in blocks of a few seconds, so that each
comparison sees the same machine. Printed: p50/p99 latency, throughput and errors per system and
concurrency, then the targets: mlre's p50 at c=1 within 2 ms of raw predict, the shadow adding at
most 10% to the champion's p50 and throughput at c=1 at least 2x MLflow's (on the paired
blocks), throughput at 8 and 32 in flight at least 2x MLflow's (rounds), zero errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WORK = BENCH_DIR / ".work" / "serve"
NAME = "adult_serve"
#: The same model registered again, with its version 2 in shadow for good: the paired blocks
#: alternate between a server of NAME and one of SHADOWED instead of toggling the shadow.
SHADOWED = "adult_serve_shadowed"
#: Bumped when setup registers something a reused work folder from before would lack.
SETUP_VERSION = 2
DATA = REPO_DIR / "examples" / "data" / "adult.csv.gz"
TARGET = "income-per-year"


# --------------------------------------------------------------------------- load generator


async def _load(url: str, bodies: list[bytes], concurrency: int, total: int, warmup: int) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        headers = {"content-type": "application/json"}
        for i in range(warmup):
            await client.post(url, content=bodies[i % len(bodies)], headers=headers)
        counter = iter(range(total))

        async def worker() -> None:
            nonlocal errors
            for i in counter:
                t0 = time.perf_counter()
                try:
                    r = await client.post(url, content=bodies[i % len(bodies)], headers=headers)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return _stats(latencies, wall, errors)


def _stats(latencies: list[float], wall: float, errors: int) -> dict:
    import numpy as np

    ms = np.array(latencies) * 1000
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "rps": len(latencies) / wall,
        "errors": errors,
        "requests": len(latencies),
    }


_WRK_SCRIPT = r"""
local bodies = {}
for line in io.lines(os.getenv("MLRE_BENCH_BODIES")) do
  if #line > 0 then bodies[#bodies + 1] = line end
end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT {\"p50_ms\": %.4f, \"p99_ms\": %.4f, \"rps\": %.3f, \"errors\": %d, \"requests\": %d}\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests / (summary.duration / 1e6),
    e.connect + e.read + e.write + e.status + e.timeout, summary.requests))
end
"""


def _wrk(url: str, bodies: Path, concurrency: int, seconds: float, warmup: float) -> dict:
    """wrk (C, one thread) keeping ``concurrency`` requests in flight for ``seconds``; its
    percentiles are exact to the microsecond. A non-2xx answer counts as an error."""
    script = WORK / "bench.lua"
    script.write_text(_WRK_SCRIPT)
    env = os.environ | {"MLRE_BENCH_BODIES": str(bodies)}

    def run(duration: float) -> subprocess.CompletedProcess:
        cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s",
               "--timeout", "30s", "-s", str(script), url]  # fmt: skip
        return subprocess.run(cmd, env=env, text=True, capture_output=True, check=False)

    if warmup > 0:
        run(warmup)
    return _result(run(seconds))


def load_child(args: argparse.Namespace) -> None:
    bodies = [line.encode() for line in Path(args.bodies).read_text().splitlines() if line]
    result = asyncio.run(_load(args.url, bodies, args.concurrency, args.requests, args.warmup))
    print("RESULT " + json.dumps(result), flush=True)


def _floor(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """The registered model and the benchmark's rows as one-row tables (pandas-typed, or with
    ``--json-values`` the table of JSON values the service builds), warmed up."""
    import pandas as pd

    from mlre.serve.protocol import records_frame
    from mlre.track.registry import load_model

    model = load_model(f"models:/{NAME}/1").model
    records = json.loads(Path(args.rows).read_text())
    table = records_frame if args.json_values else pd.DataFrame
    rows = [table([r]) for r in records]
    for i in range(args.warmup):
        model.predict_proba(rows[i % len(rows)])
    return model, rows


def raw_child(args: argparse.Namespace) -> None:
    """The floor: the registered model's predict on one row at a time, in threads."""
    import threading

    model, rows = _floor(args)
    latencies: list[float] = []
    counter = iter(range(args.requests))

    def worker() -> None:
        for i in counter:
            t0 = time.perf_counter()
            model.predict_proba(rows[i % len(rows)])
            latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("RESULT " + json.dumps(_stats(latencies, time.perf_counter() - started, 0)), flush=True)


def raw_loop(args: argparse.Namespace) -> None:
    """The floor kept up for paired blocks: each line on stdin (seconds) runs one-row predicts
    back to back for that long and answers one RESULT line."""
    model, rows = _floor(args)
    print("READY", flush=True)
    for line in sys.stdin:
        latencies: list[float] = []
        started = time.perf_counter()
        end = started + float(line)
        i = 0
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            model.predict_proba(rows[i % len(rows)])
            latencies.append(time.perf_counter() - t0)
            i += 1
        wall = time.perf_counter() - started
        print("RESULT " + json.dumps(_stats(latencies, wall, 0)), flush=True)


def floor_server(args: argparse.Namespace) -> None:
    """The HTTP floor: FastAPI on uvicorn answering a parsed JSON body with a constant, so the
    table shows what the client and one HTTP round trip cost on this machine by themselves."""
    import uvicorn
    from fastapi import FastAPI, Request

    app = FastAPI()

    @app.get("/ready")
    async def ready() -> dict:
        return {"ready": True}

    async def predict(request: Request) -> dict:
        json.loads(await request.body())
        return {"predictions": [{"prediction": "<=50K"}]}

    # this module's annotations are strings; FastAPI must see the class to pass the request
    predict.__annotations__["request"] = Request
    app.post("/predict")(predict)

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


# --------------------------------------------------------------------------- orchestration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = os.environ | {
        "PYTHONPATH": str(REPO_DIR / "src"),
        "MLRE_API_KEY": "bench-key-0123456789abcdef",
        # `mlflow models serve` starts the `uvicorn` script of the environment it runs in
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _python(*args: str, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=WORK, env=_env(), text=True,
                          capture_output=True, check=False, **kwargs)  # fmt: skip


def _result(done: subprocess.CompletedProcess) -> dict:
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"no result: {done.stderr[-2000:]}")


def setup(budget: float) -> None:
    """Train and register the model (v1 champion, v2 a copy for the shadow)."""
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    script = f"""
import mlre, pandas as pd
from mlre.serve.gate import promote
from mlre.track.registry import log_and_register
df = pd.read_csv({str(DATA)!r})
r = mlre.run(df, target={TARGET!r}, time_budget={budget}, project={NAME!r}, report=False, force=True)
X = df.drop(columns=[{TARGET!r}])
log_and_register(r.run_id, r.model, X, name={NAME!r},
                 tags={{"mlre.metric": r.metric, "mlre.holdout_score": str(r.holdout_score)}})
promote({NAME!r}, "1", "full", reason="benchmark")
for _ in range(2):
    log_and_register(r.run_id, r.model, X, name={SHADOWED!r},
                     tags={{"mlre.metric": r.metric, "mlre.holdout_score": str(r.holdout_score)}})
promote({SHADOWED!r}, "1", "full", reason="benchmark")
promote({SHADOWED!r}, "2", "shadow", reason="benchmark: a challenger in shadow throughout")
import json
rows = X.sample(200, random_state=0)
recs = json.loads(rows.to_json(orient="records"))
open("rows.json", "w").write(json.dumps(recs))
with open("bodies_predict.jsonl", "w") as f:
    for rec in recs:
        f.write(json.dumps([rec]) + "\\n")
with open("bodies_invocations.jsonl", "w") as f:
    for rec in recs:
        f.write(json.dumps({{"dataframe_records": [rec]}}) + "\\n")
members = r.model.members
print("RESULT " + json.dumps({{"members": len(members),
                               "pipelines": sum(len(m.pipelines) for m in members),
                               "families": [m.family for m in members]}}))
"""
    done = _python("-c", script)
    if done.returncode != 0:
        raise SystemExit(f"training failed:\n{done.stderr[-3000:]}")
    (WORK / "setup.json").write_text(json.dumps({"version": SETUP_VERSION}))
    print(f"model: {_result(done)}")


def _server(kind: str) -> tuple[subprocess.Popen, str, str]:
    import httpx

    port = _free_port()
    if kind == "mlflow":
        uri = f"sqlite:///{WORK / 'mlruns.db'}"
        cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{NAME}/1",
               "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
        env = _env() | {"MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri}
        path, ready = "/invocations", "/ping"
    elif kind == "http-floor":
        cmd = [sys.executable, __file__, "--floor-server", "--port", str(port)]
        env, path, ready = _env(), "/predict", "/ready"
    else:
        model = SHADOWED if kind == "mlre-shadowed" else NAME
        cmd = [sys.executable, "-m", "mlre", "serve", "--model", model, "--port", str(port)]
        env, path, ready = _env(), "/predict", "/v2/health/ready"
    proc = subprocess.Popen(cmd, cwd=WORK, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 120
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url + ready, timeout=1).status_code == 200:
                return proc, url + path, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{kind} server did not start")


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def _challenger(base: str, name: str = NAME) -> str | None:
    import httpx

    info = httpx.get(f"{base}/v2/models/{name}", timeout=10).json()
    return info["parameters"]["roles"]["challenger"]


def _shadow_ready(base: str) -> bool:
    """Whether the server's shadow worker has answered: a request is sent, and the comparisons
    counter read (the worker loads its model after the server starts)."""
    import httpx

    body = (WORK / "bodies_predict.jsonl").read_text().splitlines()[0]
    httpx.post(base + "/predict", content=body, headers={"content-type": "application/json"})
    for line in httpx.get(base + "/metrics", timeout=10).text.splitlines():
        if line.startswith("mlre_shadow_comparisons_total") and float(line.split()[-1]) > 0:
            return True
    return False


def _keep_in_shadow() -> None:
    """Put version 2 of the shadowed model back in shadow if a run before rolled it back."""
    check = "from mlre.track.releases import read_release; print(read_release(%r).challenger)"
    done = _python("-c", check % SHADOWED)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    if done.stdout.strip().splitlines()[-1] == "None":
        again = _python("-m", "mlre", "promote", SHADOWED, "--version", "2", "--shadow",
                        "--reason", "benchmark: back in shadow")  # fmt: skip
        if again.returncode != 0:
            raise RuntimeError(again.stderr[-2000:])


def _shadow(base: str, on: bool) -> None:
    """Put version 2 in shadow (or roll it back) and wait until the service follows."""
    if on:
        done = _python("-m", "mlre", "promote", NAME, "--version", "2", "--shadow")
    else:
        done = _python("-m", "mlre", "rollback", NAME, "--reason", "benchmark round done")
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    end = time.monotonic() + 60
    while (_challenger(base) is not None) != on:
        if time.monotonic() > end:
            raise RuntimeError("the service did not follow the alias change")
        time.sleep(0.2)


def measure(
    system: str, concurrencies: list[int], args: argparse.Namespace, servers: dict
) -> list[dict]:
    """One round of ``system`` at each concurrency (``--seconds / --rounds`` a point)."""
    out = []
    if system in ("raw", "raw-json"):
        for c in concurrencies:
            done = _python(__file__, "--raw-child", "--rows", str(WORK / "rows.json"),
                           "--concurrency", str(c),
                           "--requests", str(max(200, args.requests // args.rounds)),
                           "--warmup", str(args.warmup),
                           *(["--json-values"] if system == "raw-json" else []))  # fmt: skip
            out.append({"system": system, "concurrency": c, "client": "-", **_result(done)})
        return out
    kind = system if system in ("mlflow", "http-floor") else "mlre"
    _, target, base = servers[kind]
    if system == "mlre+shadow":
        _shadow(base, True)
    try:
        bodies = WORK / (
            "bodies_invocations.jsonl" if system == "mlflow" else "bodies_predict.jsonl"
        )
        for c in concurrencies:
            if args.client == "wrk":
                seconds = args.seconds / args.rounds
                result = _wrk(target, bodies, c, seconds, max(1.0, seconds / 3))
            else:
                done = _python(__file__, "--load-child", "--url", target, "--bodies", str(bodies),
                               "--concurrency", str(c),
                               "--requests", str(max(200, args.requests // args.rounds)),
                               "--warmup", str(args.warmup))  # fmt: skip
                result = _result(done)
            out.append({"system": system, "concurrency": c, "client": args.client, **result})
    finally:
        if system == "mlre+shadow":
            _shadow(base, False)
    return out


#: Pause after a block of the shadowed server: its worker predicts what it gathered in the last
#: half-second (``mlre.serve.shadow.BATCH_SECONDS``) after the load stops.
SETTLE_SECONDS = 0.7


def paired_blocks(
    target: str, args: argparse.Namespace, shadowed: str | None, mlflow: str | None = None
) -> list[dict]:
    """mlre at c=1, the JSON-valued raw floor, (given ``shadowed``, the URL of a second server
    whose model has a challenger in shadow throughout) mlre with a shadow and (given
    ``mlflow``) MLflow's server, in short alternating blocks, all kept up: on a shared machine
    whose speed drifts by a third from one half-minute to the next, two points measured a
    minute apart differ by more than the 2 ms (or 10%) a target allows, while blocks seconds
    apart see the same machine. The order turns from block to block (and reverses every other
    one), so no system always goes first. One p50 per system per block, and the servers'
    throughput."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--raw-loop", "--rows", str(WORK / "rows.json"),
         "--warmup", str(args.warmup), "--json-values"],
        cwd=WORK, env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None

    def answer() -> str:
        for line in proc.stdout:
            if line.startswith(("READY", "RESULT ")):
                return line
        raise RuntimeError("the raw floor process stopped")

    def raw() -> dict:
        proc.stdin.write(f"{args.block_seconds}\n")
        proc.stdin.flush()
        return json.loads(answer()[7:]) | {"errors": 0}

    def served(url: str, bodies: Path = WORK / "bodies_predict.jsonl") -> dict:
        return _wrk(url, bodies, 1, args.block_seconds, 0)

    def shadow() -> dict:
        assert shadowed is not None
        out = served(shadowed)
        time.sleep(SETTLE_SECONDS)  # the worker's last batch is not the next block's load
        # a block whose server had rolled its challenger back measured no shadow at all
        if _challenger(shadowed.removesuffix("/predict"), SHADOWED) is None:
            raise RuntimeError("the shadowed server rolled its challenger back during the blocks"
                               " (see `mlre deployments adult_serve_shadowed`)")  # fmt: skip
        return out

    bodies = WORK / "bodies_predict.jsonl"
    systems = {"raw_json": raw, "mlre": lambda: served(target)}
    if shadowed:
        systems["mlre_shadow"] = shadow
    if mlflow:
        systems["mlflow"] = lambda: served(mlflow, WORK / "bodies_invocations.jsonl")
    names = list(systems)
    out = []
    try:
        answer()
        _wrk(target, bodies, 1, 2, 1)  # the servers' connections and caches warm
        if mlflow:
            _wrk(mlflow, WORK / "bodies_invocations.jsonl", 1, 2, 1)
        if shadowed:
            _wrk(shadowed, bodies, 1, 2, 1)
            time.sleep(SETTLE_SECONDS)
        for i in range(args.blocks):
            turn = i // 2 % len(names)
            order = names[turn:] + names[:turn]
            if i % 2:
                order.reverse()
            row: dict[str, Any] = {"block": i, "errors": 0}
            for name in order:
                result = systems[name]()
                row[f"{name}_p50_ms"] = result["p50_ms"]
                if name != "raw_json":
                    row[f"{name}_rps"] = result["rps"]
                row["errors"] += result["errors"]
            out.append(row)
            line = (f"block {i + 1}/{args.blocks} raw-json {row['raw_json_p50_ms']:6.2f} ms  "
                    f"mlre {row['mlre_p50_ms']:6.2f} ms  "
                    f"gap {row['mlre_p50_ms'] - row['raw_json_p50_ms']:+.2f} ms")  # fmt: skip
            if shadowed:
                extra = row["mlre_shadow_p50_ms"] / row["mlre_p50_ms"] - 1
                line += f"  shadow {row['mlre_shadow_p50_ms']:6.2f} ms ({extra:+.1%})"
            if mlflow:
                ratio = row["mlre_rps"] / row["mlflow_rps"]
                line += f"  mlflow {row['mlflow_p50_ms']:6.2f} ms (mlre {ratio:.2f}x req/s)"
            print(line, flush=True)
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    return out


def run_rounds(
    systems: list[str], concurrencies: list[int], args: argparse.Namespace
) -> tuple[list[dict], list[dict]]:
    """Every system at every concurrency, ``--rounds`` times over in turn, the servers kept up
    throughout: a quiet or a busy minute of the machine falls on all systems alike; then the
    paired c=1 blocks of mlre and the raw floor (``--blocks``)."""
    servers: dict[str, tuple] = {}
    rows: list[dict] = []
    blocks: list[dict] = []
    try:
        for system in systems:
            kind = system if system in ("mlflow", "http-floor") else "mlre"
            if kind not in servers and system not in ("raw", "raw-json"):
                servers[kind] = _server(kind)
        if "mlre" in servers and _challenger(servers["mlre"][2]) is not None:
            _shadow(servers["mlre"][2], False)  # left over from an interrupted run
        for rnd in range(args.rounds):
            for system in systems:
                for row in measure(system, concurrencies, args, servers):
                    rows.append({**row, "round": rnd})
                    print(f"round {rnd + 1}/{args.rounds} {system:<12} c={row['concurrency']:<3}"
                          f" p50 {row['p50_ms']:8.2f} ms  {row['rps']:8,.0f} req/s", flush=True)  # fmt: skip
            (WORK / "results.json").write_text(json.dumps(rows, indent=2))
        if args.blocks and "mlre" in systems and args.client == "wrk":
            shadowed = None
            if "mlre+shadow" in systems:
                _keep_in_shadow()
                servers["mlre-shadowed"] = _server("mlre-shadowed")
                base = servers["mlre-shadowed"][2]
                end = time.monotonic() + 120  # its worker loads the challenger after start
                while _challenger(base, SHADOWED) is None or not _shadow_ready(base):
                    if time.monotonic() > end:
                        raise RuntimeError("the shadowed server's challenger did not come up")
                    time.sleep(0.5)
                shadowed = servers["mlre-shadowed"][1]
            mlflow = servers["mlflow"][1] if "mlflow" in servers else None
            blocks = paired_blocks(servers["mlre"][1], args, shadowed, mlflow)
    finally:
        for proc, _, _ in servers.values():
            _stop(proc)
    return rows, blocks


def combine(rows: list[dict]) -> list[dict]:
    """One row per system and concurrency: the median over rounds of p50, p99 and throughput,
    errors summed, and each round's p50 kept."""
    import numpy as np

    out = []
    keys = list(dict.fromkeys((r["system"], r["concurrency"]) for r in rows))
    for system, c in keys:
        mine = [r for r in rows if r["system"] == system and r["concurrency"] == c]
        out.append({
            "system": system, "concurrency": c, "client": mine[0].get("client", "-"),
            "p50_ms": float(np.median([r["p50_ms"] for r in mine])),
            "p99_ms": float(np.median([r["p99_ms"] for r in mine])),
            "rps": float(np.median([r["rps"] for r in mine])),
            "errors": sum(r["errors"] for r in mine),
            "rounds_p50_ms": [round(r["p50_ms"], 2) for r in mine],
        })  # fmt: skip
    return out


def _paired(rows: list[dict], a: str, b: str, c: int, key: str, how: Any) -> float | None:
    """The median over rounds of ``how(a's value, b's value)`` measured in the same round."""
    import numpy as np

    by = {(r["system"], r["round"]): r[key] for r in rows if r["concurrency"] == c}
    pairs = [how(by[a, k], by[b, k]) for (s, k) in by if s == a and (b, k) in by]
    return float(np.median(pairs)) if pairs else None


def table(rows: list[dict]) -> str:
    lines = [
        "| system | client | concurrency | p50 (ms) | p99 (ms) | throughput (req/s) | errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['system']} | {r.get('client', '-')} | {r['concurrency']} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | "
            f"{r['rps']:,.0f} | {r['errors']} |"
        )
    return "\n".join(lines)


def targets(rows: list[dict], blocks: list[dict]) -> list[str]:
    """The issue's targets on the medians over rounds of quantities paired within a round; the
    c=1 latency gap and the shadow's cost on the paired blocks when they ran (rounds put a
    minute between the two points of a pair)."""
    import numpy as np

    summary = combine(rows)

    def get(system: str, c: int) -> dict | None:
        return next((r for r in summary if r["system"] == system and r["concurrency"] == c), None)

    out = []
    floors = [r for r in (get("raw", 1), get("raw-json", 1)) if r]
    raw, mine = min(floors, key=lambda r: r["p50_ms"]) if floors else None, get("mlre", 1)
    if raw and mine:
        gap = _paired(rows, "mlre", raw["system"], 1, "p50_ms", lambda a, b: a - b)
        assert gap is not None
        verdict = "(the paired blocks decide)" if blocks else "met" if gap <= 2 else "NOT met"
        out.append(f"p50 at c=1: mlre {mine['p50_ms']:.2f} ms vs {raw['system']} {raw['p50_ms']:.2f} ms "
                   f"(medians); the gap within a round, median: {gap:+.2f} ms (target <= 2 ms) "
                   f"{verdict}")  # fmt: skip
        floor = get("http-floor", 1)
        if floor:
            out.append(f"of which the HTTP floor (client + a constant answer): {floor['p50_ms']:.2f} ms; "
                       f"mlre's own work: {gap - floor['p50_ms']:+.2f} ms")  # fmt: skip
    if blocks:
        gaps = np.array([b["mlre_p50_ms"] - b["raw_json_p50_ms"] for b in blocks])
        q1, med, q3 = np.percentile(gaps, [25, 50, 75])
        out.append(f"p50 at c=1 in {len(gaps)} paired blocks: mlre - raw-json median gap {med:+.2f} ms "
                   f"(quartiles {q1:+.2f} to {q3:+.2f}; mlre {np.median([b['mlre_p50_ms'] for b in blocks]):.2f}, "
                   f"raw-json {np.median([b['raw_json_p50_ms'] for b in blocks]):.2f} ms) "
                   f"(target <= 2 ms) {'met' if med <= 2 else 'NOT met'}")  # fmt: skip
    paired_mlflow = [b for b in blocks if "mlflow_rps" in b]
    for c in sorted({r["concurrency"] for r in rows}):
        a, b = get("mlre", c), get("mlflow", c)
        if a and b:
            ratio = _paired(rows, "mlre", "mlflow", c, "rps", lambda x, y: x / y)
            assert ratio is not None
            decided = c == 1 and paired_mlflow
            verdict = ("(the paired blocks decide)" if decided
                       else "met" if ratio >= 2 else "NOT met")  # fmt: skip
            out.append(f"throughput at c={c}: mlre {a['rps']:,.0f} vs mlflow {b['rps']:,.0f} req/s "
                       f"(medians); ratio within a round, median: {ratio:.2f}x (target >= 2x) "
                       f"{verdict}")  # fmt: skip
    if paired_mlflow:
        ratios = np.array([b["mlre_rps"] / b["mlflow_rps"] for b in paired_mlflow])
        q1, med, q3 = np.percentile(ratios, [25, 50, 75])
        out.append(f"throughput at c=1 in {len(ratios)} paired blocks: mlre / mlflow median "
                   f"{med:.2f}x (quartiles {q1:.2f}x to {q3:.2f}x; "
                   f"{np.median([b['mlre_rps'] for b in paired_mlflow]):,.0f} vs "
                   f"{np.median([b['mlflow_rps'] for b in paired_mlflow]):,.0f} req/s) "
                   f"(target >= 2x) {'met' if med >= 2 else 'NOT met'}")  # fmt: skip
    shadow = get("mlre+shadow", 1)
    paired_shadow = [b for b in blocks if "mlre_shadow_p50_ms" in b]
    if shadow and mine:
        extra = _paired(rows, "mlre+shadow", "mlre", 1, "p50_ms", lambda a, b: a / b - 1)
        assert extra is not None
        verdict = ("(the paired blocks decide)" if paired_shadow
                   else "met" if extra <= 0.10 else "NOT met")  # fmt: skip
        out.append(f"shadow at c=1: p50 {shadow['p50_ms']:.2f} vs {mine['p50_ms']:.2f} ms (medians); "
                   f"within a round, median: {extra:+.1%} (target <= +10%) {verdict}")  # fmt: skip
    if paired_shadow:
        extras = np.array([b["mlre_shadow_p50_ms"] / b["mlre_p50_ms"] - 1 for b in paired_shadow])
        q1, med, q3 = np.percentile(extras, [25, 50, 75])
        out.append(f"shadow at c=1 in {len(extras)} paired blocks: mlre with a shadow vs without, "
                   f"median {med:+.1%} (quartiles {q1:+.1%} to {q3:+.1%}; "
                   f"{np.median([b['mlre_shadow_p50_ms'] for b in paired_shadow]):.2f} vs "
                   f"{np.median([b['mlre_p50_ms'] for b in paired_shadow]):.2f} ms) "
                   f"(target <= +10%) {'met' if med <= 0.10 else 'NOT met'}")  # fmt: skip
    errors = sum(r["errors"] for r in rows) + sum(b["errors"] for b in blocks)
    out.append(f"errors: {errors} (target 0) {'met' if errors == 0 else 'NOT met'}")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=30.0, help="seconds to train the model")
    p.add_argument("--requests", type=int, default=1000, help="requests per measurement")
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--concurrency", default="1,8,32")
    p.add_argument("--systems", default="raw,raw-json,http-floor,mlre,mlflow,mlre+shadow")
    p.add_argument("--client", choices=["auto", "wrk", "httpx"], default="auto",
                   help="load generator (auto: wrk when it is on PATH)")  # fmt: skip
    p.add_argument("--seconds", type=float, default=12.0,
                   help="seconds per point with wrk, over all rounds")  # fmt: skip
    p.add_argument("--rounds", type=int, default=3,
                   help="measure every system this many times in turn (medians are reported)")  # fmt: skip
    p.add_argument("--blocks", type=int, default=12,
                   help="paired c=1 blocks of the raw floor, mlre, mlre with a shadow and MLflow "
                        "after the rounds (wrk only)")  # fmt: skip
    p.add_argument("--block-seconds", type=int, default=2, help="seconds per paired block")
    p.add_argument("--reuse", action="store_true", help="keep the model trained by the last run")
    p.add_argument("--load-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--raw-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--raw-loop", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--floor-server", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--bodies", help=argparse.SUPPRESS)
    p.add_argument("--rows", help=argparse.SUPPRESS)
    p.add_argument("--json-values", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.load_child:
        args.concurrency = int(args.concurrency)
        load_child(args)
        return 0
    if args.floor_server:
        floor_server(args)
        return 0
    if args.raw_child:
        args.concurrency = int(args.concurrency)
        raw_child(args)
        return 0
    if args.raw_loop:
        raw_loop(args)
        return 0
    marker = WORK / "setup.json"
    current = marker.exists() and json.loads(marker.read_text()).get("version") == SETUP_VERSION
    if not (args.reuse and current):
        setup(args.budget)
    if args.client == "auto":
        args.client = "wrk" if shutil.which("wrk") else "httpx"
    elif args.client == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not on PATH (apt-get install wrk), or use --client httpx")
    print(f"load generator: {args.client}")
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    rows, blocks = run_rounds(args.systems.split(","), concurrencies, args)
    print()
    print(table(combine(rows)))
    print()
    for row in combine(rows):
        if row["concurrency"] == 1:
            print(f"- {row['system']} p50 at c=1 by round: "
                  + ", ".join(f"{v:.2f}" for v in row["rounds_p50_ms"]))  # fmt: skip
    for line in targets(rows, blocks):
        print("- " + line)
    (WORK / "results.json").write_text(json.dumps({"rounds": rows, "blocks": blocks}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
