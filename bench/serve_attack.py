"""`mlre serve` under attack: legitimate clients at a steady rate, beside attackers, while a
canary is promoted and rolled back; against a clean run of the same legitimate load.

    .venv/bin/python bench/serve_attack.py                  # 20 s a phase, 40 legitimate req/s
    .venv/bin/python bench/serve_attack.py --seconds 60 --rate 80

A linear model of german_credit (the bundled table) is trained and registered twice in
bench/.work/attack/ (v1 champion, v2 the same model: a healthy challenger). `mlre serve` runs in
a child process on a loopback port. Each phase sends single-row `/predict` requests from
``--clients`` legitimate clients at ``--rate`` requests a second in all. The attack phase adds
``--attackers`` clients (each from a loopback address of its own, 127.0.0.2 and up; the
legitimate ones share 127.0.0.1) sending, as fast as they are answered: the malformed bodies of
tests/serve/test_hostile.py (deep nesting, 5,000-digit integers, NaN ids, bad binary sizes,
1e400, duplicate and non-string columns, column bombs of 3,000 keys), requests with chosen
canary keys and with one repeated request id; at a quarter of the phase the challenger is put
on a 20% canary through `/admin/promote`, at three quarters rolled back through
`/admin/rollback`.

Printed: for the legitimate clients, requests sent, lost (anything but 200), 500s, p50 and p99
latency in each phase; the attackers' answers by status (500s counted apart); the server's
resident memory (sampled every half second: start, peak, end of each phase); automatic
rollbacks of the healthy challenger (wrong rollbacks). Targets: 0 lost, 0 500s, the attack
phase's p99 within 2x the clean one's, memory that does not grow through the run, 0 wrong
rollbacks. No target is asserted; they are reported met or not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WORK = BENCH_DIR / ".work" / "attack"
NAME = "attacked"
KEY = "bench-attack-key-0123456789"
DATA = REPO_DIR / "tests" / "data" / "tables" / "german_credit" / "data.csv.gz"
TARGET = "credit"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update({"MLRE_API_KEY": KEY, "PYTHONUNBUFFERED": "1"})
    return env


def setup() -> list[dict[str, Any]]:
    """Train and register the model twice (once per folder); the rows the clients send."""
    import pandas as pd

    WORK.mkdir(parents=True, exist_ok=True)
    os.chdir(WORK)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    df = pd.read_csv(DATA)
    if not (WORK / "ready").exists():
        import mlre
        from mlre.serve.gate import promote
        from mlre.track.registry import log_and_register

        result = mlre.run(df, target=TARGET, time_budget=10, families=["linear"], report=False)
        tags = {"mlre.metric": result.metric, "mlre.holdout_score": f"{result.holdout_score:.6f}"}
        X = df.drop(columns=[TARGET])
        for _ in range(2):  # v1 and v2 of NAME: the same model, so a healthy challenger
            log_and_register(result.run_id, result.model, X, name=NAME, tags=tags)
        promote(NAME, "1", "full", reason="bench set-up")
        (WORK / "ready").write_text("ok")
    rows = df.drop(columns=[TARGET]).head(200)
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in rows.to_dict("records")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlre", "serve", "--model", NAME, "--port", str(port),
         "--poll", "0.5"],
        cwd=WORK, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(600):
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not become ready")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def attacks(rows: list[dict[str, Any]]) -> list[tuple[str, bytes, dict[str, str]]]:
    """(path, body, headers) of every hostile request."""
    good = rows[0]
    plain = {"content-type": "application/json"}
    age = {"name": "age", "shape": [1], "datatype": "INT64", "data": [30]}
    infer = f"/v2/models/{NAME}/infer"

    def v2(inputs: list[dict], **extra: Any) -> bytes:
        return json.dumps({"inputs": inputs, **extra}).encode()

    bomb = json.dumps([good | {f"k{i}": i for i in range(3_000)} for _ in range(20)]).encode()
    return [
        ("/predict", b"[" * 50_000 + b"]" * 50_000, plain),
        ("/predict", b'[{"age": ' + b"9" * 5000 + b"}]", plain),
        (infer, v2([age]).replace(b'{"inputs"', b'{"id": NaN, "inputs"'), plain),
        (infer, v2([age | {"parameters": {"binary_data_size": "abc"}}]), plain),
        ("/predict", json.dumps([good | {"age": "X"}]).replace('"X"', "1e400").encode(), plain),
        (
            "/invocations",
            json.dumps({"dataframe_split": {"columns": ["age", "age"], "data": [[1, 2]]}}).encode(),
            plain,
        ),
        (
            "/invocations",
            json.dumps({"dataframe_split": {"columns": [1, "age"], "data": [[1, 2]]}}).encode(),
            plain,
        ),
        ("/predict", bomb, plain),
        # valid bodies that try to steer: a chosen canary key, one request id over and over
        ("/predict", json.dumps([good]).encode(), plain | {"x-request-key": "steer-1"}),
        ("/predict", json.dumps([good]).encode(), plain | {"x-request-id": "same-id"}),
        # a request the challenger cannot read (a column missing): the caller's fault
        ("/predict", json.dumps([{k: v for k, v in good.items() if k != "age"}]).encode(), plain),
    ]


async def phase(url: str, rows: list[dict[str, Any]], args: argparse.Namespace, attack: bool,
                pid: int) -> dict[str, Any]:  # fmt: skip
    import httpx

    latencies: list[float] = []
    statuses: dict[str, int] = {}
    hostile: dict[str, int] = {}
    memory: list[float] = []
    health: list[float] = []
    stop = time.monotonic() + args.seconds
    interval = args.clients / args.rate

    async def legit(k: int, client: httpx.AsyncClient) -> None:
        i, next_at = k, time.monotonic()
        while time.monotonic() < stop:
            next_at += interval
            t0 = time.monotonic()
            try:
                r = await client.post(f"{url}/predict", json=[rows[i % len(rows)]], timeout=10)
                code = str(r.status_code)
            except httpx.HTTPError as err:
                code = type(err).__name__
            latencies.append(time.monotonic() - t0)
            statuses[code] = statuses.get(code, 0) + 1
            i += args.clients
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def attacker(k: int) -> None:
        # each attacker from an address of its own (127.0.0.2, ...), as separate hosts would be
        transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{2 + k}")
        cases, i = attacks(rows), k
        async with httpx.AsyncClient(transport=transport) as client:
            while time.monotonic() < stop:
                path, body, headers = cases[i % len(cases)]
                try:
                    r = await client.post(f"{url}{path}", content=body, headers=headers,
                                          timeout=10)  # fmt: skip
                    code = str(r.status_code)
                except httpx.HTTPError as err:
                    code = type(err).__name__
                hostile[code] = hostile.get(code, 0) + 1
                i += 1

    async def operator(client: httpx.AsyncClient) -> None:
        key = {"x-api-key": KEY}
        await asyncio.sleep(args.seconds / 4)
        await client.post(f"{url}/admin/promote", headers=key, timeout=60,
                          json={"version": "2", "mode": "canary", "share": 0.2})  # fmt: skip
        await asyncio.sleep(args.seconds / 2)
        await client.post(f"{url}/admin/rollback", headers=key, json={"reason": "bench"},
                          timeout=60)  # fmt: skip

    async def prober(client: httpx.AsyncClient) -> None:
        while time.monotonic() < stop:
            t0 = time.monotonic()
            with contextlib.suppress(httpx.HTTPError):
                await client.get(f"{url}/v2/health/live", timeout=10)
            health.append(time.monotonic() - t0)
            await asyncio.sleep(0.05)

    async def sampler() -> None:
        while time.monotonic() < stop:
            memory.append(rss_mb(pid))
            await asyncio.sleep(0.5)

    limits = httpx.Limits(max_connections=args.clients + args.attackers + 4)
    async with httpx.AsyncClient(limits=limits) as client:
        tasks = [legit(k, client) for k in range(args.clients)] + [sampler(), prober(client)]
        if attack:
            tasks += [attacker(k) for k in range(args.attackers)] + [operator(client)]
        await asyncio.gather(*tasks)
    ordered, probes = sorted(latencies), sorted(health)

    def q(p: float, values: list[float] = ordered) -> float:
        if not values:
            return float("nan")
        return 1000 * values[min(len(values) - 1, int(p * len(values)))]

    return {
        "phase": "attack" if attack else "clean",
        "sent": len(latencies),
        "lost": sum(n for code, n in statuses.items() if code != "200"),
        "legit_500": statuses.get("500", 0),
        "p50_ms": q(0.5),
        "p99_ms": q(0.99),
        "health_p99_ms": q(0.99, probes),
        "hostile": hostile,
        "rss_start_mb": memory[0] if memory else float("nan"),
        "rss_peak_mb": max(memory) if memory else float("nan"),
        "rss_end_mb": memory[-1] if memory else float("nan"),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    p.add_argument("--rate", type=float, default=40.0, help="legitimate requests a second")
    p.add_argument("--clients", type=int, default=4, help="legitimate clients")
    p.add_argument("--attackers", type=int, default=4, help="attacking clients")
    args = p.parse_args()
    rows = setup()
    from mlre.track.audit_log import AuditLog

    before = len(AuditLog().records(NAME))
    proc, url = start_server()
    log_lines: list[str] = []
    reader = threading.Thread(target=lambda: log_lines.extend(
        ln.decode(errors="replace") for ln in proc.stdout), daemon=True)  # fmt: skip
    reader.start()
    try:
        clean = asyncio.run(phase(url, rows, args, False, proc.pid))
        attacked = asyncio.run(phase(url, rows, args, True, proc.pid))
        after = asyncio.run(phase(url, rows, args, False, proc.pid))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=5)
    actions = AuditLog().records(NAME)[before:]
    wrong = [r for r in actions if r.action == "rollback" and r.actor == "mlre-serve"]
    rows_out = [clean, attacked, after | {"phase": "clean, after"}]
    print(
        "| phase | legitimate requests | lost | 500s | p50 (ms) | p99 (ms) | health p99 (ms) "
        "| RSS start / peak / end (MB) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows_out:
        print(
            f"| {r['phase']} | {r['sent']} | {r['lost']} | {r['legit_500']} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['health_p99_ms']:.1f} | "
            f"{r['rss_start_mb']:.0f} / {r['rss_peak_mb']:.0f} / {r['rss_end_mb']:.0f} |"
        )
    hostile = attacked["hostile"]
    print(f"\nattackers' answers by status: {dict(sorted(hostile.items()))}")
    tracebacks = sum("Traceback" in ln for ln in log_lines)
    print(f"release actions during the attack: {[(r.action, r.actor) for r in actions]}")
    targets = [
        ("0 legitimate requests lost", sum(r["lost"] for r in rows_out) == 0),
        (
            "0 responses 500 (legitimate or not)",
            hostile.get("500", 0) + sum(r["legit_500"] for r in rows_out) == 0,
        ),
        ("attack p99 within 2x the clean p99", attacked["p99_ms"] <= 2 * clean["p99_ms"]),
        (
            "/v2/health/live p99 under 200 ms in every phase (probed every 50 ms)",
            all(r["health_p99_ms"] < 200 for r in rows_out),
        ),
        (
            "memory does not grow (end of the last phase within 10% of the first's)",
            after["rss_end_mb"] <= 1.1 * clean["rss_end_mb"],
        ),
        ("0 wrong rollbacks of the healthy challenger", not wrong),
        ("no traceback in the server log", tracebacks == 0),
    ]
    print()
    for what, met in targets:
        print(f"- {what}: {'met' if met else 'NOT met'}")
    out = WORK / f"attack_{time.strftime('%Y%m%d_%H%M')}.json"
    out.write_text(json.dumps({"args": vars(args), "phases": rows_out, "wrong_rollbacks": len(wrong),
                               "tracebacks": tracebacks}, indent=2, default=str))  # fmt: skip
    print(f"\nsaved {out}")


if __name__ == "__main__":
    main()
