"""The authorization matrix, generated from the door declaration (modelport/doors.py): every REST route
and gRPC method × {no key, infer key, key scoped to another model, admin key}, with the repository API
on and off, on real servers. The expected answer follows from each door's kind and model source alone.
A served route or method without a declaration, or a declared door without a sample request here,
fails the suite."""

from __future__ import annotations

import os

import grpc
import pytest

from modelport import doors
from modelport.doors import ADMIN, PUBLIC
from modelport.transports.grpc.server import served_methods
from modelport.wire.grpc import grpc_predict_v2_pb2 as pb
from modelport.wire.grpc import model_repository_pb2 as mr
from grpc_health.v1 import health_pb2

from ..grpc_helpers import infer_request
from .conftest import CALLERS, KEYS, V2_BODY, key_headers, key_metadata

import numpy as np

GEN = {"text_input": "hi", "parameters": {"max_tokens": 2}}
SHM_KEY = f"/mp_doors_{os.getpid()}"  # a shared-memory object the shm register samples name (shm_object makes it)
# One request per REST door that passes every control: door name -> (path, JSON body or None, status).
REST_SAMPLES = {
    "v1.alive": ("/", None, 200),
    "v2.live": ("/v2/health/live", None, 200),
    "v2.ready": ("/v2/health/ready", None, 200),
    "v2.server_metadata": ("/v2", None, 200),
    "metrics": ("/metrics", None, 200),
    "openapi": ("/openapi.json", None, 200),
    "docs": ("/docs", None, 200),
    "docs.asset": ("/docs/init.js", None, 200),
    "v2.stats": ("/v2/models/stats", None, 200),
    "v2.model_metadata": ("/v2/models/sum", None, 200),
    "v2.model_ready": ("/v2/models/sum/ready", None, 200),
    "v2.model_stats": ("/v2/models/sum/stats", None, 200),
    "v2.model_health": ("/v2/models/sum/health", None, 200),
    "v2.infer": ("/v2/models/sum/infer", V2_BODY, 200),
    "v2.infer_stream": ("/v2/models/sum/infer_stream", V2_BODY, 200),
    "v2.generate": ("/v2/models/toy/generate", GEN, 200),
    "v2.generate_stream": ("/v2/models/toy/generate_stream", GEN, 200),
    "v2.model_metadata.version": ("/v2/models/ver/versions/1", None, 200),
    "v2.model_ready.version": ("/v2/models/ver/versions/1/ready", None, 200),
    "v2.model_stats.version": ("/v2/models/ver/versions/1/stats", None, 200),
    "v2.model_health.version": ("/v2/models/ver/versions/1/health", None, 200),
    "v2.infer.version": ("/v2/models/ver/versions/1/infer", V2_BODY, 200),
    "v2.infer_stream.version": ("/v2/models/ver/versions/1/infer_stream", V2_BODY, 200),
    # toy has no versions: past the controls, the data plane answers "no such version"
    "v2.generate.version": ("/v2/models/toy/versions/1/generate", GEN, 404),
    "v2.generate_stream.version": ("/v2/models/toy/versions/1/generate_stream", GEN, 404),
    "v1.models": ("/v1/models", None, 200),
    "v1.model_ready": ("/v1/models/sum", None, 200),
    "v1.predict": ("/v1/models/sum:predict", {"instances": [[1.0, 2.0, 3.0]]}, 200),
    "v1.explain": ("/v1/models/sum:explain", {"instances": [[1.0, 2.0, 3.0]]}, 501),
    "openai.models": ("/openai/v1/models", None, 200),
    "openai.model": ("/openai/v1/models/toy", None, 200),
    "openai.completions": ("/openai/v1/completions", {"model": "toy", "prompt": "hi", "max_tokens": 2}, 200),
    "openai.chat_completions": ("/openai/v1/chat/completions",
                                {"model": "toy", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}, 200),
    "openai.embeddings": ("/openai/v1/embeddings", {"model": "encoder", "input": "hi"}, 200),
    "openai.completions.v1": ("/v1/completions", {"model": "toy", "prompt": "hi", "max_tokens": 2}, 200),
    "openai.chat_completions.v1": ("/v1/chat/completions",
                                   {"model": "toy", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}, 200),
    "openai.embeddings.v1": ("/v1/embeddings", {"model": "encoder", "input": "hi"}, 200),
    "repository.index": ("/v2/repository/index", None, 200),
    "repository.load": ("/v2/repository/models/spare/load", None, 200),
    "repository.unload": ("/v2/repository/models/spare/unload", None, 200),
    "routing.traffic": ("/v2/repository/models/ver/traffic", None, 200),
    "routing.promote": ("/v2/repository/models/ver/promote", {"version": "1"}, 200),
    "routing.rollback": ("/v2/repository/models/ver/rollback", None, 200),
    "ui.page": ("/ui", None, 200),
    "ui.models": ("/ui/api/models", None, 200),
    "ui.stats": ("/ui/api/stats", None, 200),
    "ui.model": ("/ui/api/models/sum", None, 200),
    "ui.history": ("/ui/api/history", None, 200),
    "ui.model_history": ("/ui/api/history/sum", None, 200),
    "mlflow.invocations": ("/invocations", {"dataframe_records": [{"x": 1.0}]}, 200),  # the scorer fixture
    "mlflow.ping": ("/ping", None, 200),
    "mlflow.health": ("/health", None, 200),
    "mlflow.version": ("/version", None, 200),
    "ui.static": ("/ui/static/app.js", None, 200),
    # Triton's system shared memory (served: system_shared_memory "local"; these clients are on this host).
    "shm.status": ("/v2/systemsharedmemory/status", None, 200),
    "shm.region_status": ("/v2/systemsharedmemory/region/doors/status", None, 404),  # registered next
    "shm.register": ("/v2/systemsharedmemory/region/doors/register", {"key": SHM_KEY, "offset": 0, "byte_size": 64}, 200),
    "shm.unregister": ("/v2/systemsharedmemory/region/doors/unregister", None, 200),
    "shm.unregister_all": ("/v2/systemsharedmemory/unregister", None, 200),
}

X = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
# One request per gRPC door: door name -> (request message, response type).
GRPC_SAMPLES = {
    "grpc.ServerLive": (pb.ServerLiveRequest(), pb.ServerLiveResponse),
    "grpc.ServerReady": (pb.ServerReadyRequest(), pb.ServerReadyResponse),
    "grpc.ModelReady": (pb.ModelReadyRequest(name="sum"), pb.ModelReadyResponse),
    "grpc.ServerMetadata": (pb.ServerMetadataRequest(), pb.ServerMetadataResponse),
    "grpc.ModelMetadata": (pb.ModelMetadataRequest(name="sum"), pb.ModelMetadataResponse),
    "grpc.ModelInfer": (infer_request("sum", ("x", "FP32", X)), pb.ModelInferResponse),
    "grpc.ModelStreamInfer": (infer_request("sum", ("x", "FP32", X)), pb.ModelStreamInferResponse),
    "grpc.ModelStatistics": (pb.ModelStatisticsRequest(name="sum"), pb.ModelStatisticsResponse),
    "grpc.RepositoryIndex": (pb.RepositoryIndexRequest(), pb.RepositoryIndexResponse),
    "grpc.RepositoryModelLoad": (pb.RepositoryModelLoadRequest(model_name="spare"), pb.RepositoryModelLoadResponse),
    "grpc.RepositoryModelUnload": (pb.RepositoryModelUnloadRequest(model_name="spare"), pb.RepositoryModelUnloadResponse),
    "mlserver.RepositoryIndex": (mr.RepositoryIndexRequest(), mr.RepositoryIndexResponse),
    "mlserver.RepositoryModelLoad": (mr.RepositoryModelLoadRequest(model_name="spare"), mr.RepositoryModelLoadResponse),
    "mlserver.RepositoryModelUnload": (mr.RepositoryModelUnloadRequest(model_name="spare"), mr.RepositoryModelUnloadResponse),
    "health.Check": (health_pb2.HealthCheckRequest(), health_pb2.HealthCheckResponse),
    "health.Watch": (health_pb2.HealthCheckRequest(), health_pb2.HealthCheckResponse),
    # grpcio-health-checking 1.85+ only (doors.OPTIONAL_GRPC); tried only where the installed one serves it.
    "grpc.SystemSharedMemoryStatus": (pb.SystemSharedMemoryStatusRequest(), pb.SystemSharedMemoryStatusResponse),
    "grpc.SystemSharedMemoryRegister": (pb.SystemSharedMemoryRegisterRequest(name="doors", key=SHM_KEY, byte_size=64),
                                        pb.SystemSharedMemoryRegisterResponse),
    "grpc.SystemSharedMemoryUnregister": (pb.SystemSharedMemoryUnregisterRequest(name="doors"),
                                          pb.SystemSharedMemoryUnregisterResponse),
    **({"health.List": (health_pb2.HealthListRequest(), health_pb2.HealthListResponse)}
       if hasattr(health_pb2, "HealthListRequest") else {}),
}


def expected(door: doors.Door, caller: str, ok, repository_api: str = "on", protected: bool = False,
             refused=403, missing=401):
    """What a caller gets at a door, from the door's declaration alone (``protected``: auth_health and
    auth_metrics on)."""
    if door.kind == ADMIN and repository_api == "off":
        return refused  # for everybody, before any key is looked at
    if door.kind == PUBLIC and (not protected or door.protected_by is None):  # no key is looked at
        return ok
    if caller == "none":
        return missing
    if door.kind == ADMIN and caller != "admin":
        return refused
    names_a_model = door.model in ("path", "body", "every") or door.field is not None
    if caller == "scoped" and names_a_model:  # every sample names a model other than "other"
        return refused
    return ok


async def _rest_status(served, door: doors.Door, key: str | None) -> tuple[int, str]:
    path, body, _ = REST_SAMPLES[door.name]
    r = await served.http.request(door.method, path, json=body, headers=key_headers(key))
    return r.status_code, r.text[:300]


GRPC_CODES = {200: grpc.StatusCode.OK, 401: grpc.StatusCode.UNAUTHENTICATED, 403: grpc.StatusCode.PERMISSION_DENIED}


async def _grpc_code(served, door: doors.Door, key: str | None) -> tuple[grpc.StatusCode, str]:
    message, answer = GRPC_SAMPLES[door.name]
    metadata = key_metadata(key)
    try:
        if door.method == "STREAM" and door.name == "grpc.ModelStreamInfer":
            call = served.channel.stream_stream(door.path, request_serializer=type(message).SerializeToString,
                                                response_deserializer=answer.FromString)

            async def one():
                yield message

            replies = [r async for r in call(one(), metadata=metadata)]
            assert replies and not replies[0].error_message, replies
        elif door.method == "STREAM":  # a server stream that never ends (health Watch): its first answer
            call = served.channel.unary_stream(door.path, request_serializer=type(message).SerializeToString,
                                               response_deserializer=answer.FromString)(message, metadata=metadata)
            await call.read()
            call.cancel()
        else:
            call = served.channel.unary_unary(door.path, request_serializer=type(message).SerializeToString,
                                              response_deserializer=answer.FromString)
            await call(message, metadata=metadata)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


SETTINGS = [("on", False), ("off", False), ("on", True)]  # (repository_api, auth_health and auth_metrics)


@pytest.fixture(autouse=True)
def shm_object():
    """The object SHM_KEY names, for the register samples."""
    path = "/dev/shm/" + SHM_KEY.strip("/")
    with open(path, "wb") as f:
        f.write(bytes(4096))
    yield
    os.unlink(path)


@pytest.mark.parametrize("repository_api, protected", SETTINGS)
async def test_rest_matrix(start, repository_api, protected):
    served = await start(api_keys=KEYS, repository_api=repository_api, enable_ui=True,
                         auth_health=protected, auth_metrics=protected, system_shared_memory="local")
    declared = served.server.rest_app.router.doors
    assert {d.name for d in declared} == set(REST_SAMPLES), "every door needs a sample request here"
    wrong = []
    for door in declared:  # in declaration order: load comes before unload
        ok = REST_SAMPLES[door.name][2]
        for caller in ("none", "infer", "scoped", "admin"):
            want = expected(door, caller, ok, repository_api, protected)
            status, text = await _rest_status(served, door, CALLERS[caller])
            if status != want:
                wrong.append(f"{door.method} {door.path} ({door.kind}) as {caller}: {status}, expected {want}: {text}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("repository_api, protected", SETTINGS)
async def test_grpc_matrix(start, repository_api, protected):
    served = await start(api_keys=KEYS, repository_api=repository_api, auth_health=protected, auth_metrics=protected,
                         system_shared_memory="local")
    offered = [d for d in doors.GRPC if d.path in served_methods()]  # an older library may lack an optional one
    assert set(GRPC_SAMPLES) == {d.name for d in offered}, "every gRPC door needs a sample request here"
    wrong = []
    for door in offered:
        for caller in ("none", "infer", "scoped", "admin"):
            want = GRPC_CODES[expected(door, caller, 200, repository_api, protected)]
            code, details = await _grpc_code(served, door, CALLERS[caller])
            if code != want:
                wrong.append(f"{door.path} ({door.kind}) as {caller}: {code.name}, expected {want.name}: {details}")
    assert not wrong, "\n".join(wrong)


async def test_without_keys_repository_off_is_still_refused_at_every_door(start):
    served = await start(repository_api="off")
    for door in [*doors.REST, *doors.GRPC]:
        if door.kind != ADMIN:
            continue
        if door in doors.REST:
            status, text = await _rest_status(served, door, None)
            assert status == 403 and "repository_api: off" in text, (door.path, status, text)
        else:
            code, details = await _grpc_code(served, door, None)
            assert code == grpc.StatusCode.PERMISSION_DENIED and "repository_api: off" in details, (door.path, code)
    # Everything else still serves.
    assert (await served.http.post("/v2/models/spare/infer", json=V2_BODY)).status_code == 200


async def test_served_routes_and_methods_are_exactly_the_declared_ones(start):
    served = await start(enable_ui=True)
    app = served.server.rest_app
    # REST: the router is the only dispatch; everything in it is a declared door (built-in or a mount's).
    assert set(app.router.doors) == set(doors.REST) | set(doors.CONSOLE) | set(doors.MLFLOW)
    assert sorted(prefix for prefix, _ in app.mounts) == sorted(["/ui", *(d.path for d in doors.MLFLOW)])
    # gRPC: every method of every registered service is declared, and nothing is declared that is not served.
    assert set(served_methods()) <= set(doors.GRPC_BY_METHOD)
    assert set(doors.GRPC_BY_METHOD) - set(served_methods()) <= doors.OPTIONAL_GRPC
    # Not declared: refused, never treated as inference.
    for method, path in (("GET", "/v1/models/"), ("GET", "/v2/"), ("POST", "/v2/models/sum/frobnicate"),
                         ("GET", "/ui/nothing"), ("POST", "/predict"), ("GET", "/docs/")):
        r = await served.http.request(method, path)
        assert r.status_code == 404, (method, path, r.status_code)
    call = served.channel.unary_unary("/inference.GRPCInferenceService/NotAMethod")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(b"")
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_a_door_needs_a_kind_and_a_mount_needs_doors():
    with pytest.raises(ValueError, match="kind"):
        doors.Door("x", "GET", "/x", "")
    with pytest.raises(ValueError, match="kind"):
        doors.Door("x", "GET", "/x", "health")
    with pytest.raises(ValueError, match="model source"):
        doors.Door("x", "POST", "/x", doors.INFER, "header")
    from modelport.transports.rest import RestApp
    from modelport.dataplane.plane import DataPlane
    from modelport.repository.entries import ModelRepository

    app = RestApp(DataPlane(ModelRepository()))

    async def handler(method, path, scope, receive):
        return 200, b"{}", b"application/json", []

    with pytest.raises(ValueError, match="declares its doors"):
        app.mount("/mlflow", handler, ())
    with pytest.raises(ValueError, match="outside the mount"):
        app.mount("/mlflow", handler, [doors.Door("mlflow.ping", "GET", "/ping", PUBLIC)])
    with pytest.raises(ValueError, match="declared twice"):
        app.mount("/v2", handler, [doors.Door("clash", "GET", "/v2", PUBLIC)])
