"""Triton's statistics extension and the health view, over REST and gRPC, with tritonclient unchanged."""

from __future__ import annotations

import time

import grpc
import httpx
import pytest

from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
from modelport.wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from ..fixture_models import FailingModel, PickyModel, PrePostModel, SumModel
from ..helpers import server_in_thread

httpclient = pytest.importorskip("tritonclient.http")
grpcclient = pytest.importorskip("tritonclient.grpc")
from tritonclient.utils import InferenceServerException  # noqa: E402

V2 = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}
KINDS = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output", "cache_hit", "cache_miss")


@pytest.fixture
def server():
    with server_in_thread([SumModel("sum"), FailingModel(), PrePostModel()], enable_grpc=True) as server:
        yield server


def _infer(server, model: str, n: int = 1) -> list[int]:
    with httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30) as client:
        return [client.post(f"/v2/models/{model}/infer", json=V2).status_code for _ in range(n)]


def test_rest_statistics_count_successes_failures_and_stages(server):
    assert _infer(server, "sum", 3) == [200] * 3
    assert _infer(server, "failing", 2) == [500] * 2
    assert _infer(server, "prepost") == [200]
    before = time.time() * 1000
    with httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}") as client:
        doc = client.get("/v2/models/sum/stats").json()
        (stats,) = doc["model_stats"]
        assert stats["name"] == "sum" and stats["version"] == ""
        inference = stats["inference_stats"]
        assert set(inference) == set(KINDS)
        assert inference["success"]["count"] == 3 and inference["success"]["ns"] > 0
        assert inference["fail"]["count"] == 0
        assert inference["compute_infer"]["count"] == 3 and 0 < inference["compute_infer"]["ns"] <= inference["success"]["ns"]
        assert inference["cache_hit"] == {"count": 0, "ns": 0}
        assert stats["inference_count"] == 3 and stats["execution_count"] == 3
        assert 0 < stats["last_inference"] <= before + 1000

        failing = client.get("/v2/models/failing/stats").json()["model_stats"][0]["inference_stats"]
        assert failing["fail"]["count"] == 2 and failing["fail"]["ns"] > 0 and failing["success"]["count"] == 0

        # The metrics count the same requests and stages (a success is counted in one tally with them).
        metrics = client.get("/metrics").text
        for line in ('modelport_request_duration_seconds_count{model="sum",protocol="v2"} 3.0',
                     'modelport_stage_duration_seconds_count{model="sum",stage="predict"} 3.0',
                     'modelport_request_duration_seconds_count{model="failing",protocol="v2"} 2.0',
                     'modelport_request_failures_total{code="internal",model="failing",protocol="v2"} 2.0'):
            assert line in metrics, line
        (total,) = [float(x.rpartition(" ")[2]) for x in metrics.splitlines()
                    if x.startswith('modelport_request_duration_seconds_sum{model="sum",protocol="v2"}')]
        assert abs(total * 1e9 - inference["success"]["ns"]) < 1000  # one timer for both

        prepost = client.get("/v2/models/prepost/stats").json()["model_stats"][0]["inference_stats"]
        assert [prepost[k]["count"] for k in ("compute_input", "compute_infer", "compute_output")] == [1, 1, 1]

        every = client.get("/v2/models/stats").json()["model_stats"]
        assert [s["name"] for s in every] == ["failing", "prepost", "sum"]
        assert "statistics" in client.get("/v2").json()["extensions"]

        # Failure cases: an unknown model is 404 with the protocol's error body; a POST is 405.
        r = client.get("/v2/models/nope/stats")
        assert r.status_code == 404 and "nope" in r.json()["error"]
        assert client.post("/v2/models/sum/stats").status_code == 405
        # ...and the server serves normally afterwards.
        assert client.post("/v2/models/sum/infer", json=V2).status_code == 200


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_tritonclient_get_inference_statistics(server, protocol):
    _infer(server, "sum", 2)
    if protocol == "http":
        client = httpclient.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    else:
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    try:
        if protocol == "http":
            stats = client.get_inference_statistics("sum")["model_stats"][0]
            count = int(stats["inference_stats"]["success"]["count"])
            every = client.get_inference_statistics()["model_stats"]
        else:
            stats = client.get_inference_statistics("sum", as_json=True)["model_stats"][0]
            count = int(stats["inference_stats"]["success"]["count"])
            every = client.get_inference_statistics(as_json=True)["model_stats"]
            message = client.get_inference_statistics("sum")
            assert message.model_stats[0].inference_stats.compute_infer.count == 2
        assert stats["name"] == "sum" and count == 2
        assert {s["name"] for s in every} == {"sum", "failing", "prepost"}
        with pytest.raises(InferenceServerException, match="nope"):
            client.get_inference_statistics("nope")
        assert client.is_model_ready("sum")  # still serving
    finally:
        client.close()


def test_grpc_model_statistics_rpc(server):
    _infer(server, "failing")
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        answer = stub.ModelStatistics(pb.ModelStatisticsRequest(name="failing"))
        assert answer.model_stats[0].inference_stats.fail.count == 1
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelStatistics(pb.ModelStatisticsRequest(name="nope"))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert stub.ServerReady(pb.ServerReadyRequest()).ready
        assert "statistics" in stub.ServerMetadata(pb.ServerMetadataRequest()).extensions


def test_health_view_from_thresholds():
    with server_in_thread(
        [SumModel("sum"), FailingModel()], health_degraded_error_rate=0.2, health_failed_error_rate=0.6
    ) as server:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30) as client:
            idle = client.get("/v2/models/sum/health").json()
            assert idle["status"] == "healthy" and idle["requests"] == 0 and idle["latency_ms"] == {"p50": None, "p99": None}
            for _ in range(4):
                assert client.post("/v2/models/sum/infer", json=V2).status_code == 200
            health = client.get("/v2/models/sum/health").json()
            assert health["status"] == "healthy" and health["requests"] == 4 and health["error_rate"] == 0
            assert 0 < health["latency_ms"]["p50"] <= health["latency_ms"]["p99"]
            # The failing model: every request fails -> failed, with the reason.
            client.post("/v2/models/failing/infer", json=V2)
            failed = client.get("/v2/models/failing/health").json()
            assert failed["status"] == "failed" and failed["error_rate"] == 1.0 and "error rate" in failed["reasons"][0]
            r = client.get("/v2/models/nope/health")
            assert r.status_code == 404 and "nope" in r.json()["error"]
            assert client.post("/v2/models/sum/infer", json=V2).status_code == 200


def test_health_degrades_on_latency_and_error_rate():
    with server_in_thread([SumModel("sum"), PickyModel()], health_degraded_error_rate=0.1, health_degraded_p99_ms=0.000001) as server:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30) as client:
            assert client.post("/v2/models/sum/infer", json=V2).status_code == 200
            health = client.get("/v2/models/sum/health").json()
            assert health["status"] == "degraded" and "p99 latency" in health["reasons"][0]
    with server_in_thread([SumModel("sum"), PickyModel()], health_degraded_error_rate=0.1, health_min_requests=3) as server:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30) as client:
            # The model's own 400s count as its errors; under health_min_requests nothing is judged.
            assert client.post("/v2/models/picky/infer", json=V2).status_code == 400
            assert client.get("/v2/models/picky/health").json()["status"] == "healthy"
            assert client.post("/v2/models/picky/infer", json=V2).status_code == 400
            assert client.post("/v2/models/picky/infer", json=V2).status_code == 400
            health = client.get("/v2/models/picky/health").json()
            assert health["status"] == "failed" and health["errors"] == 3
            # A version that does not exist is 404 naming it; then normal service.
            r = client.get("/v2/models/sum/versions/9/health")
            assert r.status_code == 404 and "9" in r.json()["error"]
            assert client.post("/v2/models/sum/infer", json=V2).status_code == 200


def test_statistics_can_be_turned_off():
    with server_in_thread([SumModel("sum")], enable_statistics=False, enable_grpc=True) as server:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30) as client:
            r = client.get("/v2/models/sum/stats")
            assert r.status_code == 501 and "enable_statistics" in r.json()["error"]
            assert client.post("/v2/models/sum/infer", json=V2).status_code == 200
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            with pytest.raises(grpc.RpcError) as caught:
                GRPCInferenceServiceStub(channel).ModelStatistics(pb.ModelStatisticsRequest())
            assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_settings_validate_thresholds():
    from modelport.settings import SettingsError, load_server_settings

    with pytest.raises(SettingsError, match="access_log_sample"):
        load_server_settings(env={"MODELPORT_ACCESS_LOG_SAMPLE": "1.5"})
    with pytest.raises(SettingsError, match="health_window"):
        load_server_settings(env={"MODELPORT_HEALTH_WINDOW": "-1"})
    s = load_server_settings(env={"MODELPORT_HEALTH_DEGRADED_P99_MS": "250", "MODELPORT_ENABLE_STATISTICS": "false"})
    assert s.health_degraded_p99_ms == 250.0 and s.enable_statistics is False




def test_recorder_unit_cache_and_queue_kinds():
    from modelport.observability.stats import Statistics

    stats = Statistics()
    rec = stats.recorder("m", "2")
    rec.request(0.002, True)
    rec.request(0.004, False)
    rec.cache(True, 0.0001)
    rec.cache(False, 0.0)
    rec.queued([0.001, 0.003])
    rec.stage("predict", 0.001)
    rec.stage("explain", 0.5)  # not a Triton stage: ignored
    (doc,) = stats.model_stats([("m", "2")])
    s = doc["inference_stats"]
    assert (doc["name"], doc["version"], doc["inference_count"], doc["execution_count"]) == ("m", "2", 1, 1)
    assert s["success"] == {"count": 1, "ns": 2_000_000} and s["fail"] == {"count": 1, "ns": 4_000_000}
    assert s["cache_hit"] == {"count": 1, "ns": 100_000} and s["cache_miss"]["count"] == 1
    assert s["queue"] == {"count": 2, "ns": 4_000_000}
    (unknown,) = stats.model_stats([("other", None)])
    assert unknown["inference_count"] == 0 and unknown["last_inference"] == 0


def test_response_cache_hits_and_misses_in_statistics():
    model = SumModel("cached")
    model.response_cache = {"max_entries": 10}  # a production control (modelport.controls)
    with server_in_thread([model], enable_grpc=True) as server:
        assert _infer(server, "cached", 3) == [200] * 3
        with httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}") as client:
            inference = client.get("/v2/models/cached/stats").json()["model_stats"][0]["inference_stats"]
        assert inference["cache_miss"]["count"] == 1 and inference["cache_hit"]["count"] == 2
        assert inference["cache_hit"]["ns"] > 0
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
        try:
            stats = client.get_inference_statistics("cached")
            assert stats.model_stats[0].inference_stats.cache_hit.count == 2
        finally:
            client.close()


def test_one_models_statistics_among_many_read_only_its_series():
    """Asked for one model among many, the statistics come from its own series (not a collect of every
    model's) and say the same as the full read."""
    from modelport.observability.stats import Statistics

    stats = Statistics()
    for i in range(40):
        rec = stats.recorder(f"m{i}", "1" if i % 2 else None)
        for j in range(i % 5):
            rec.request(0.001 * (j + 1), ok=j != 2)
        rec.stage("predict", 0.002)
        rec.cache(i % 3 == 0, 0.0001)
        rec.queued([0.001] * (i % 4))
    keys = [("m7", "1"), ("m12", None), ("m13", "1"), ("missing", None)]
    collected = []
    stats.count.collect = lambda real=stats.count.collect: collected.append(1) or real()
    few = stats.model_stats(keys)
    assert collected == []  # the families of all 40 models were not collected
    stats.sample_source = lambda: stats._own_samples()  # the full read, as with workers > 1
    assert stats.model_stats(keys) == few and collected == [1]
    assert [d["inference_count"] for d in few] == [2, 2, 2, 0]
    assert [d["inference_stats"]["fail"]["count"] for d in few] == [0, 0, 1, 0]
    assert few[0]["last_inference"] > 0 and few[3]["last_inference"] == 0
