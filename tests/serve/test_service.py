"""`mlre serve` against a real registry in a temp dir, on a real uvicorn server on a loopback
port: the protocols, validation and limits, shadow and canary trials with automatic rollback,
the gate of a full promotion, metrics and the prediction log."""

from __future__ import annotations

import json
import time

import httpx
import numpy as np
import pytest

from mlre.errors import GateError
from mlre.serve.batching import warm_up
from mlre.serve.gate import promote
from mlre.serve.service import ServeConfig, Service
from mlre.spec import DeployPolicy, RollbackPolicy
from mlre.track.audit_log import AuditLog
from mlre.track.releases import read_release
from serve_helpers import (
    KEY,
    NAME,
    BrokenModel,
    build_registry,
    children,
    records,
    server_thread,
    variant,
)

POLICY = DeployPolicy(
    rollback=RollbackPolicy(
        window_seconds=120, min_requests=10, latency_floor_ms=20, max_latency_ratio=2.0
    ),
    gate_margin=0.005,
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("serve")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.chdir(folder)
        reg = build_registry(folder)
        promote(NAME, "1", "full", reason="first champion")
        yield reg


def _service(folder, **kwargs) -> Service:
    config = ServeConfig(
        model=NAME, api_key=KEY, poll_seconds=0.2, deploy=POLICY,
        prediction_log=folder / "predictions.db", max_body_bytes=64 * 1024, **kwargs,
    )  # fmt: skip
    return Service(config)


@pytest.fixture
def served(registry):
    """A server on the registry; any trial left over from an earlier test is ended first."""
    from mlre.track.releases import rollback

    rollback(NAME, reason="test set-up")
    service = _service(registry.folder)
    with server_thread(service) as url:
        yield registry, service, url


def _wait(predicate, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_the_three_protocols_answer_like_the_model_itself(served):
    reg, _, url = served
    rows = reg.rows
    expected = reg.result.model.predict_proba(rows.iloc[:3])
    classes = [str(c) for c in reg.result.model.classes_]
    plain = httpx.post(f"{url}/predict", json=records(rows, 0, 3)).json()
    assert plain["version"] == "1" and plain["role"] == "champion"
    got = [[p["probabilities"][c] for c in classes] for p in plain["predictions"]]
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    # MLflow's scoring format, as `mlflow models serve` takes it
    split = json.loads(rows.iloc[:3].to_json(orient="split", index=False))
    mlflow = httpx.post(f"{url}/invocations", json={"dataframe_split": split}).json()
    np.testing.assert_allclose(
        [[r[f"proba_{c}"] for c in classes] for r in mlflow["predictions"]], expected, rtol=1e-9
    )
    recs = httpx.post(f"{url}/invocations", json={"dataframe_records": records(rows, 0, 3)})
    assert recs.json() == mlflow
    csv = httpx.post(
        f"{url}/invocations",
        content=rows.iloc[:3].to_csv(index=False),
        headers={"content-type": "text/csv"},
    )
    assert csv.json() == mlflow
    meta = httpx.get(f"{url}/v2/models/{NAME}").json()
    assert meta["name"] == NAME and meta["versions"] == ["1"]
    assert {i["name"] for i in meta["inputs"]} == set(rows.columns)
    assert httpx.get(f"{url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{url}/v2/models/{NAME}/ready").status_code == 200
    assert "/v2/models/{model_name}/infer" in httpx.get(f"{url}/openapi.json").json()["paths"]


def test_bad_requests_get_the_right_4xx_with_a_clear_message_never_a_500(served):
    reg, _, url = served
    good = records(reg.rows, 0)[0]
    infer = f"{url}/v2/models/{NAME}/infer"
    short = {"inputs": [{"name": "age", "shape": [2], "datatype": "INT64", "data": [1]}]}
    as_json = {"content-type": "application/json"}
    no_age = [{k: v for k, v in good.items() if k != "age"}]
    plain_text = {"content-type": "text/plain"}
    stream = (b" " * 4096 for _ in range(1000))  # chunked: no Content-Length to refuse it by

    def post(path: str, **kwargs):
        return httpx.post(path if path.startswith("http") else f"{url}{path}", **kwargs)

    cases = {
        "malformed JSON": (post("/predict", content=b'{"age": 3', headers=as_json), 400, "not valid JSON"),
        "missing column": (post("/predict", json=no_age), 422, "'age' is missing"),
        "wrong type": (post("/predict", json=[good | {"age": "old"}]), 422, "expects numbers"),
        "nested value": (post("/predict", json=[good | {"purpose": {"a": 1}}]), 422, "nested"),
        "oversized body": (post("/predict", json=[good] * 2000), 413, "over the limit"),
        "oversized stream": (post("/predict", content=stream, headers=as_json), 413, "over the limit"),
        "unknown model": (post("/v2/models/nope/infer", json={"inputs": []}), 404, "unknown model"),
        "no body": (post("/predict"), 400, "no body"),
        "not a table": (post("/invocations", json={"dataframe_split": {"columns": ["a"]}}), 400, "dataframe_split"),
        "v2 shape": (post(infer, json=short), 400, "1 values for shape"),
        "no API key": (post("/admin/reload"), 401, "API key"),
        "wrong API key": (post("/admin/reload", headers={"x-api-key": "wrong"}), 401, "API key"),
        "feedback without key": (post("/feedback", json={"request_id": "x", "label": 1}), 401, "API key"),
        "unsupported type": (post("/invocations", content=b"x", headers=plain_text), 415, "not supported"),
    }  # fmt: skip
    for what, (response, status, text) in cases.items():
        assert response.status_code == status, (what, response.text)
        assert text in response.json()["error"], (what, response.text)
    wrong = httpx.post(f"{url}/predict", json=[good | {"age": "old"}]).json()
    assert wrong["column"] == "age"
    # unseen categories and extra columns are answered, with warnings
    odd = httpx.post(f"{url}/predict", json=[good | {"purpose": "A499", "note": "x"}]).json()
    assert odd["predictions"] and any("never seen" in w for w in odd["warnings"])
    assert any("'note' is not used" in w for w in odd["warnings"])
    assert httpx.post(f"{url}/admin/reload", headers={"x-api-key": KEY}).status_code == 200
    metrics = httpx.get(f"{url}/metrics").text
    assert 'mlre_rejected_requests_total{status="422"}' in metrics


def test_a_v2_client_speaks_to_the_service(served):
    tritonclient = pytest.importorskip("tritonclient.http")
    reg, _, url = served
    rows = reg.rows.iloc[:4]
    client = tritonclient.InferenceServerClient(url.removeprefix("http://"))
    assert client.is_server_live() and client.is_model_ready(NAME)
    inputs = []
    for col in rows.columns:
        values = rows[col].to_numpy()
        if values.dtype.kind in "if":
            arr, dtype = values.astype(np.float64), "FP64"
        else:
            arr, dtype = values.astype(object).astype(np.bytes_).astype(object), "BYTES"
        tensor = tritonclient.InferInput(col, [len(rows)], dtype)
        tensor.set_data_from_numpy(arr, binary_data=col != "age")  # JSON and binary tensors
        inputs.append(tensor)
    result = client.infer(NAME, inputs)
    proba = result.as_numpy("probabilities")
    np.testing.assert_allclose(proba, reg.result.model.predict_proba(rows), rtol=1e-9)
    assert list(result.as_numpy("predict")) == list(reg.result.model.predict(rows))


def test_a_broken_challenger_in_shadow_never_reaches_callers_and_is_rolled_back(served):
    reg, service, url = served
    promote(NAME, "2", "shadow", reason="test: broken")
    assert _wait(lambda: service.state.challenger is not None), "the service follows the alias"
    answers = [httpx.post(f"{url}/predict", json=records(reg.rows, i)) for i in range(40)]
    assert all(a.status_code == 200 and a.json()["version"] == "1" for a in answers)
    assert _wait(lambda: read_release(NAME).challenger is None), "rolled back in the registry"
    assert service.state.challenger is None
    last = AuditLog().records(NAME)[-1]
    assert last.action == "rollback" and last.actor == "mlre-serve"
    assert "error rate" in last.reason and last.versions["challenger"] == "2"
    metrics = httpx.get(f"{url}/metrics").text
    assert 'mlre_rollbacks_total{model="credit",version="2"} 1.0' in metrics
    service.predictions.flush()
    logged = service.predictions.frame(NAME, version="2")
    assert len(logged) >= 10 and set(logged["role"]) == {"shadow"}
    assert logged["error"].str.contains("broken on purpose").all()


def test_a_slow_canary_is_rolled_back_on_latency_and_is_sticky_per_key(served):
    reg, service, url = served
    promote(NAME, "3", "canary", share=0.5, reason="test: slow")
    assert _wait(lambda: service.state.mode == "canary")
    # the same key always lands on the same version
    same = {
        httpx.post(f"{url}/predict", json=records(reg.rows, 0), headers={"x-request-key": "u-7"}).json()["version"]
        for _ in range(5)
    }  # fmt: skip
    assert len(same) == 1
    roles = []
    for i in range(80):
        r = httpx.post(
            f"{url}/predict", json=records(reg.rows, i), headers={"x-request-key": f"user-{i}"}
        )
        assert r.status_code == 200
        roles.append(r.json()["role"])
        if read_release(NAME).challenger is None:
            break
    assert "challenger" in roles and "champion" in roles
    assert _wait(lambda: read_release(NAME).challenger is None)
    last = AuditLog().records(NAME)[-1]
    assert last.action == "rollback" and "latency" in last.reason


def test_a_canary_whose_answers_shift_from_the_champions_is_rolled_back(served):
    reg, service, url = served
    promote(NAME, "5", "canary", share=0.5, reason="test: flipped")
    assert _wait(lambda: service.state.mode == "canary")
    for i in range(300):
        r = httpx.post(
            f"{url}/predict", json=records(reg.rows, i), headers={"x-request-key": f"k{i}"}
        )
        assert r.status_code == 200
        if read_release(NAME).challenger is None:
            break
    assert _wait(lambda: read_release(NAME).challenger is None)
    last = AuditLog().records(NAME)[-1]
    assert last.action == "rollback" and "distributed unlike the champion" in last.reason


def test_full_promotion_passes_the_gate_only_after_a_clean_trial(served):
    reg, service, url = served
    with pytest.raises(GateError, match="not on trial"):
        promote(NAME, "4", "full", policy=POLICY, predictions=service.predictions)
    promote(NAME, "4", "shadow", reason="test: healthy")
    assert _wait(lambda: service.state.challenger is not None)
    for i in range(3):
        httpx.post(f"{url}/predict", json=records(reg.rows, i))
    service.predictions.flush()
    with pytest.raises(GateError, match="fewer than the 10"):
        promote(NAME, "4", "full", policy=POLICY, predictions=service.predictions)
    for i in range(3, 15):
        httpx.post(f"{url}/predict", json=records(reg.rows, i))
    assert _wait(lambda: service.predictions.count(NAME, version="4") >= 10)
    assert read_release(NAME).challenger == "4", "a healthy challenger stays"
    done = promote(NAME, "4", "full", policy=POLICY, predictions=service.predictions)
    assert done.evidence["trial_requests"] >= 10 and read_release(NAME).champion == "4"
    assert _wait(lambda: service.state.champion.version == "4"), "switched without restart"
    assert httpx.post(f"{url}/predict", json=records(reg.rows, 0)).json()["version"] == "4"
    refused = [r for r in AuditLog().records(NAME) if r.action == "promote_refused"]
    assert len(refused) >= 2 and AuditLog().verify().ok


def test_feedback_joins_true_labels_to_logged_requests(served, tmp_path):
    reg, service, url = served
    answer = httpx.post(f"{url}/predict", json=records(reg.rows, 5)).json()
    rid = answer["request_id"]
    service.predictions.flush()
    ok = httpx.post(
        f"{url}/feedback", json={"request_id": rid, "label": 2}, headers={"x-api-key": KEY}
    )
    assert ok.status_code == 200 and ok.json()["accepted"] == 1
    unknown = httpx.post(
        f"{url}/feedback", json={"request_id": "nope", "label": 2}, headers={"x-api-key": KEY}
    )
    assert unknown.status_code == 404
    frame = service.predictions.frame(NAME)
    row = frame[frame["request_id"] == rid].iloc[0]
    assert row["label"] == 2 and row["inputs"][0]["age"] == reg.rows.iloc[5]["age"]
    out = service.predictions.export_parquet(tmp_path / "log.parquet")
    import pandas as pd

    assert rid in set(pd.read_parquet(out)["request_id"])


def test_warming_up_builds_what_the_first_request_would_and_never_raises(registry):
    model = registry.result.model
    fresh = variant(model, type(model))  # nothing built yet
    assert "compiled_" not in fresh.__dict__
    warm_up(fresh)
    assert "compiled_" in fresh.__dict__
    warm_up(variant(model, BrokenModel))  # fails on every table: warming says nothing
    bare = variant(model, type(model))
    bare.background = None
    warm_up(bare)  # no rows to warm with: left as it is
    assert "compiled_" not in bare.__dict__


def test_a_serving_app_keeps_its_start_up_heap_out_of_garbage_collections(registry):
    import asyncio
    import gc

    from mlre.serve.app import create_app

    def frozen_while_started(app) -> int:
        async def run() -> int:
            async with app.router.lifespan_context(app):  # what uvicorn runs at start and stop
                return gc.get_freeze_count()

        return asyncio.run(run())

    assert gc.get_freeze_count() == 0
    try:
        # the imports and the loaded model are frozen: a full collection no longer walks them
        assert frozen_while_started(create_app(_service(registry.folder), freeze=True)) > 100_000
        gc.unfreeze()
        # an app that is not only serving (a test, an embedding program) leaves the heap as is
        assert frozen_while_started(create_app(_service(registry.folder))) == 0
    finally:
        gc.unfreeze()


def test_three_automatic_rollbacks_leave_no_shadow_process_behind(served):
    import os

    reg, service, url = served
    before = set(children(os.getpid()))
    for attempt in range(3):
        promote(NAME, "2", "shadow", reason=f"test: broken, attempt {attempt}")
        assert _wait(lambda: service.state.challenger is not None)
        for i in range(30):
            httpx.post(f"{url}/predict", json=records(reg.rows, i))
            if read_release(NAME).challenger is None:
                break
        assert _wait(lambda: read_release(NAME).challenger is None), "rolled back"
        assert service.state.challenger is None
    # each rollback closed its shadow's worker process; none outlives its trial
    assert _wait(lambda: set(children(os.getpid())) <= before, timeout=30), (
        set(children(os.getpid())) - before
    )
    rollbacks = [r for r in AuditLog().records(NAME) if r.action == "rollback"]
    assert len([r for r in rollbacks if r.actor == "mlre-serve"]) >= 3


def test_one_caller_cannot_roll_a_canary_back_alone(served):
    from mlre.serve.service import in_share

    reg, service, url = served
    promote(NAME, "2", "canary", share=0.9, reason="test: broken, steered")
    assert _wait(lambda: service.state.mode == "canary")
    steer = next(f"k{i}" for i in range(1000) if in_share(f"{NAME}:k{i}", 0.9))
    # one caller, one key that falls on the broken canary, 40 requests: each is answered (by
    # the champion, the canary failing), and the key counts as evidence once
    for i in range(40):
        r = httpx.post(
            f"{url}/predict", json=records(reg.rows, i), headers={"x-request-key": steer}
        )
        assert r.status_code == 200 and r.json()["role"] == "champion"
    time.sleep(0.5)
    assert read_release(NAME).challenger == "2", "one caller rolled the trial back"
    # many callers: the evidence is real, the canary goes
    for i in range(200):
        httpx.post(f"{url}/predict", json=records(reg.rows, i), headers={"x-request-key": f"u{i}"})
        if read_release(NAME).challenger is None:
            break
    assert _wait(lambda: read_release(NAME).challenger is None)
    assert "error rate" in AuditLog().records(NAME)[-1].reason
