"""`mlre serve` under hostile requests: every malformed body is a 4xx with a clear message,
answered fast, and the server's log holds no traceback for any of them."""

from __future__ import annotations

import concurrent.futures as cf
import json
import threading
import time

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from mlre.serve.gate import promote
from mlre.serve.protocol import MAX_COLUMNS
from mlre.serve.routes.admin import MAX_FEEDBACK
from mlre.serve.service import ServeConfig, Service
from mlre.track.audit_log import AuditLog
from serve_helpers import (
    KEY,
    NAME,
    SlowModel,
    records,
    registry_in,
    server_thread,
    start_cli_server,
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    """A registry of a small model, version 1 champion, in a folder the tests run in."""
    with registry_in(tmp_path_factory.mktemp("hostile")) as registry:
        promote(NAME, "1", "full", reason="first champion")
        yield registry


@pytest.fixture
def live(registry):
    """``mlre serve`` as a child process on the registry; yields the registry, the base URL and
    a function that stops the server and returns its log."""
    proc, url = start_cli_server(registry.folder)
    log: list[str] = []

    def stop() -> str:
        if not log:
            proc.terminate()
            out, _ = proc.communicate(timeout=30)
            log.append(out.decode("utf-8", errors="replace"))
        return log[0]

    try:
        yield registry, url, stop
    finally:
        stop()


def _v2(inputs: list[dict], **extra) -> bytes:
    return json.dumps({"inputs": inputs, **extra}).encode()


def test_every_malformed_request_is_a_clear_4xx_and_never_a_500(live):
    reg, url, stop = live
    good = records(reg.rows, 0)[0]
    age = {"name": "age", "shape": [1], "datatype": "INT64", "data": [30]}
    infer = f"/v2/models/{NAME}/infer"
    deep = b"[" * 50_000 + b"]" * 50_000
    key = {"x-api-key": KEY, "content-type": "application/json"}
    plain = {"content-type": "application/json"}
    bomb = [good | {f"unknown_{i}": i for i in range(3_000)} for _ in range(20)]
    cases = {
        "deep nesting, records": ("/predict", deep, plain, 400, "nested too deeply"),
        "deep nesting, MLflow": ("/invocations", deep, plain, 400, "nested too deeply"),
        "deep nesting, v2": (infer, deep, plain, 400, "nested too deeply"),
        "deep nesting, feedback": ("/feedback", deep, key, 400, "nested too deeply"),
        "deep nesting, promote": ("/admin/promote", deep, key, 400, "nested too deeply"),
        "5,000-digit integer": ("/predict", b'[{"age": ' + b"9" * 5000 + b"}]", plain, 400,
                                "not valid JSON"),
        "integer beyond 64 bits": ("/predict", json.dumps([good | {"age": 2**70}]).encode(),
                                   plain, 422, "beyond the range of 64 bits"),
        "1e400": ("/predict", json.dumps([good | {"age": "X"}]).replace('"X"', "1e400").encode(),
                  plain, 422, "infinite"),
        "Infinity": ("/predict", b'[{"age": Infinity}]', plain, 422, "not a JSON number"),
        "NaN id on v2": (infer, _v2([age]).replace(b'{"inputs"', b'{"id": NaN, "inputs"'),
                         plain, 400, "id must be a string"),
        "numeric id on v2": (infer, _v2([age], id=7), plain, 400, "id must be a string"),
        "parameters not an object": (infer, _v2([age | {"parameters": [1]}]), plain, 400,
                                     "parameters that are not an object"),
        "binary_data_size abc": (infer, _v2([age | {"parameters": {"binary_data_size": "abc"}}]),
                                 plain, 400, "binary_data_size"),
        "INT64 overflow": (infer, _v2([age | {"data": [2**70]}]), plain, 422, "beyond the range"),
        "FP64 overflow": (infer, _v2([age | {"datatype": "FP64"}]).replace(b"[30]", b"[1e400]"),
                          plain, 422, "beyond the range"),
        "input sent twice": (infer, _v2([age, age]), plain, 400, "sent twice"),
        "duplicate columns": ("/invocations", json.dumps({"dataframe_split": {
            "columns": ["age", "age"], "data": [[1, 2]]}}).encode(), plain, 400, "twice"),
        "non-string column": ("/invocations", json.dumps({"dataframe_split": {
            "columns": [1, "age"], "data": [[1, 2]]}}).encode(), plain, 400, "strings"),
        "column bomb": ("/predict", json.dumps(bomb).encode(), plain, 413,
                        f"more than {MAX_COLUMNS:,}"),
        "too many labels": ("/feedback", json.dumps(
            [{"request_id": str(i), "label": 1} for i in range(MAX_FEEDBACK + 1)]).encode(),
            key, 413, "the limit is"),
    }  # fmt: skip
    for what, (path, body, headers, status, text) in cases.items():
        started = time.monotonic()
        response = httpx.post(f"{url}{path}", content=body, headers=headers, timeout=30)
        took = time.monotonic() - started
        assert response.status_code == status, (what, response.status_code, response.text[:300])
        assert text in response.json()["error"], (what, response.text[:300])
        assert took < 5, (what, took)  # refused before any real work
    odd_headers = ["-1", "1e3", "99999999999999999999", "+5", "0x10", "abc"]
    for value in odd_headers:
        response = httpx.post(
            f"{url}{infer}", content=_v2([age]),
            headers={"inference-header-content-length": value, **plain},
        )  # fmt: skip
        assert 400 <= response.status_code < 500, (value, response.text[:300])
    # the service still answers, and answered every case above without a traceback
    assert httpx.post(f"{url}/predict", json=[good]).status_code == 200
    log = stop()
    assert "Traceback" not in log and " 500" not in log, log[-3000:]


def test_keys_name_who_acts_and_can_guard_predictions(registry):
    alice, bot = "alice-key-0123456789abcdef", "ci-bot-key-0123456789abcdef"
    keys = registry.folder / "keys.txt"
    keys.write_text(f"# who may change what serves\nalice: {alice}\nci-bot: {bot}\n")
    proc, url = start_cli_server(registry.folder, "--api-key-file", str(keys),
                                 "--require-key-for-predict")  # fmt: skip
    try:
        good = records(registry.rows, 0)
        refused = httpx.post(f"{url}/predict", json=good)
        assert refused.status_code == 401 and "API key" in refused.json()["error"]
        assert (
            httpx.post(f"{url}/predict", json=good, headers={"x-api-key": bot}).status_code == 200
        )
        # a form post is no way to change anything, key or not
        form = httpx.post(f"{url}/admin/reload", content=b"a=1", headers={
            "x-api-key": alice, "content-type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert form.status_code == 415
        # the audit log names the key, whatever the request says about who it is
        shadow = httpx.post(f"{url}/admin/promote", json={"version": "4", "mode": "shadow"},
                            headers={"x-api-key": alice, "x-actor": "mallory"}, timeout=60)  # fmt: skip
        assert shadow.status_code == 200, shadow.text
        back = httpx.post(f"{url}/admin/rollback", json={"reason": "test"},
                          headers={"x-api-key": bot}, timeout=60)  # fmt: skip
        assert back.status_code == 200, back.text
        actions = [(r.action, r.actor) for r in AuditLog().records(NAME)[-2:]]
        assert actions == [("shadow", "alice"), ("rollback", "ci-bot")]
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_why_a_version_is_not_served_is_told_only_with_a_key(registry):
    service = Service(ServeConfig(model=NAME, api_key=KEY, poll_seconds=0.2))
    with server_thread(service) as url:
        service.problems["3"] = f"its file {registry.folder}/x.pkl does not match its sha256"
        anonymous = httpx.get(f"{url}/admin/deployment").json()
        assert anonymous["not_served"] == {"3": "not served"}
        keyed = httpx.get(f"{url}/admin/deployment", headers={"x-api-key": KEY}).json()
        assert "sha256" in keyed["not_served"]["3"]


def test_a_hung_model_is_answered_by_timeout_and_the_loop_keeps_answering(registry, monkeypatch):
    from mlre.spec import DeployPolicy
    from mlre.track.releases import make_champion, rollback

    # version 3 is the slow one; made to hang far longer than the request timeout
    monkeypatch.setattr(SlowModel, "delay", 6.0)
    make_champion(NAME, "3", reason="test: a champion that hangs")
    service = Service(ServeConfig(
        model=NAME, api_key=KEY, poll_seconds=0.2,
        prediction_log=registry.folder / "hung.db",
        deploy=DeployPolicy(request_timeout_ms=300, max_queue_mb=1),
    ))  # fmt: skip
    probes: list[float] = []
    stop = threading.Event()
    try:
        with server_thread(service) as url:

            def probe() -> None:
                while not stop.is_set():
                    t0 = time.monotonic()
                    httpx.get(f"{url}/v2/health/live", timeout=30)
                    probes.append(time.monotonic() - t0)
                    time.sleep(0.05)

            prober = threading.Thread(target=probe)
            prober.start()
            good = records(registry.rows, 0)
            key = {"x-api-key": KEY}
            labels = [{"request_id": f"r{i}", "label": 1} for i in range(1_000)]
            with cf.ThreadPoolExecutor(8) as pool:
                answers = [pool.submit(httpx.post, f"{url}/predict", json=good, timeout=30)
                           for _ in range(6)]  # fmt: skip
                feedback = pool.submit(httpx.post, f"{url}/feedback", json=labels, headers=key,
                                       timeout=60)  # fmt: skip
                promoted = pool.submit(httpx.post, f"{url}/admin/promote", headers=key,
                                       json={"version": "4", "mode": "shadow"}, timeout=60)  # fmt: skip
                answers = [a.result() for a in answers]
                assert feedback.result().status_code == 404  # none of those ids was logged
                assert promoted.result().status_code == 200, promoted.result().text
            time.sleep(0.5)
            stop.set()
            prober.join()
            # every caller had an answer, a 503 that says when to come back, by the timeout
            # (or shed at once when the hung model's queue was full), never after the hang
            for a in answers:
                assert a.status_code == 503 and a.headers["retry-after"] == "1", a.text
                assert (
                    "did not answer within 300 ms" in a.json()["error"]
                    or "overloaded" in a.json()["error"]
                )
            metrics = httpx.get(f"{url}/metrics").text
            errors = [line for line in metrics.splitlines()
                      if line.startswith("mlre_requests_total{") and 'version="3"' in line
                      and 'role="champion"' in line and 'outcome="error"' in line]  # fmt: skip
            assert errors and float(errors[0].split()[-1]) >= len(answers), metrics
        # the event loop never waited for the model (6 s a call) nor for the feedback and the
        # promotion's load: the health checks kept coming back
        assert len(probes) > 10 and max(probes) < 3.0, max(probes)
    finally:
        stop.set()
        rollback(NAME, reason="test clean-up")
        make_champion(NAME, "1", reason="test clean-up")


def test_the_fuzzer_finds_no_input_that_makes_a_500(registry):
    # every operation of the service's own OpenAPI schema, with bodies, parameters and headers
    # drawn from the schema (and, as negative cases, outside it), with the API key so that the
    # state changes read their bodies; a bounded number of examples per operation
    service = Service(ServeConfig(model=NAME, api_key=KEY, poll_seconds=0.2,
                                  prediction_log=registry.folder / "fuzz.db"))  # fmt: skip
    failures: list[str] = []
    with server_thread(service) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 10
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck),
                      database=None)  # fmt: skip
            def call(case) -> None:
                response = case.call(base_url=url, headers={"x-api-key": KEY}, timeout=30)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.path}: {response.status_code} "
                                    f"{response.text[:200]}")  # fmt: skip

            call()
    assert not failures, failures[:5]


def test_a_client_that_floods_the_service_is_throttled_and_others_are_not(registry):
    from mlre.spec import DeployPolicy

    service = Service(ServeConfig(
        model=NAME, api_key=KEY, poll_seconds=0.2,
        deploy=DeployPolicy(client_rate=2, client_burst=40),
    ))  # fmt: skip
    good = records(registry.rows, 0)
    # about 130 KB: 9 units of body and 5 more once refused; the burst pays for three
    bomb = json.dumps([good[0] | {f"unknown_{i}": i for i in range(6_000)}]).encode()
    plain = {"content-type": "application/json"}
    with server_thread(service) as url:
        # the flooder comes from 127.0.0.2: column bombs, each refused, back to back
        flooder = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        statuses = [flooder.post(f"{url}/predict", content=bomb, headers=plain).status_code
                    for _ in range(8)]  # fmt: skip
        assert statuses[:3] == [413] * 3 and statuses[3:] == [429] * 5, statuses  # too wide
        throttled = flooder.post(f"{url}/predict", content=bomb, headers=plain)
        assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
        assert "too many requests from this client" in throttled.json()["error"]
        # a wrong key buys no fresh budget; health checks are free
        guessed = {"x-api-key": "guess", **plain}
        assert flooder.post(f"{url}/predict", content=bomb, headers=guessed).status_code == 429
        assert flooder.get(f"{url}/v2/health/live").status_code == 200
        # another client, from another address, is answered as if nothing happened
        other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.3"))
        assert all(other.post(f"{url}/predict", json=good).status_code == 200 for _ in range(10))
        # a valid key is a client of its own, whatever its address
        keyed = flooder.post(f"{url}/predict", json=good, headers={"x-api-key": KEY})
        assert keyed.status_code == 200
        metrics = httpx.get(f"{url}/metrics").text
        [line] = [ln for ln in metrics.splitlines()
                  if ln.startswith("mlre_throttled_requests_total{")]  # fmt: skip
        assert float(line.split()[-1]) >= 7
        # the budget refills: after a pause the flooder is served again
        time.sleep(3.0)
        assert flooder.post(f"{url}/predict", json=good).status_code == 200
