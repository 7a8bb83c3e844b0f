"""gRPC through Ray: Ray Serve's gRPC proxy in front of the same replicas, with tritonclient.

Ray's gRPC proxy listens on every interface (it takes no host), so this module serves on 0.0.0.0 for
its few seconds; the cluster itself stays on loopback with its own temp dir.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from modelport.settings import ServerSettings

from .ray_cluster import RAY_TEST_MARKS, RayNode, driver, unused_port, make_folder

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import tritonclient.grpc as triton
    from tritonclient.utils import InferenceServerException

    from modelport.ray import run

pytestmark = RAY_TEST_MARKS

KEYS = [
    {"name": "iris-only", "key": "iris-key", "scopes": ["infer"], "models": ["iris"]},
    {"name": "ops", "key": "admin-key", "scopes": ["infer", "admin"]},
]


@pytest.fixture(scope="module")
def grpc_url(tmp_path_factory):
    folder = make_folder(tmp_path_factory.mktemp("ray-grpc"), ("iris", "slow"))
    node = RayNode.head("grpc")
    try:
        with driver(node):
            port = unused_port()
            settings = ServerSettings(host="0.0.0.0", http_port=unused_port(), grpc_port=port, api_keys=KEYS)
            run(str(folder), settings=settings, blocking=False, ray_options={"ray_actor_options": {"num_cpus": 0.1}})
            yield f"127.0.0.1:{port}"
    finally:
        node.stop()


def _iris_input():
    item = triton.InferInput("input-0", [1, 4], "FP64")
    item.set_data_from_numpy(np.array([[6.7, 3.0, 5.2, 2.3]]))
    return item


def _status(call) -> str:
    with pytest.raises(InferenceServerException) as info:
        call()
    return info.value.status()


def test_tritonclient_grpc_through_rays_grpc_proxy(grpc_url):
    client = triton.InferenceServerClient(grpc_url)
    admin = {"authorization": "Bearer admin-key"}
    assert client.is_server_live() and client.is_server_ready()  # health stays open, as on one server
    assert client.is_model_ready("iris", headers=admin)
    assert client.get_model_metadata("iris", headers=admin).platform == "sklearn"
    answer = client.infer("iris", [_iris_input()], headers={"x-api-key": "iris-key"})
    assert answer.as_numpy("predict").tolist() == [2]
    assert _status(lambda: client.infer("nope", [_iris_input()], headers=admin)) == "StatusCode.NOT_FOUND"
    bad = triton.InferInput("input-0", [1, 3], "FP64")
    bad.set_data_from_numpy(np.array([[1.0, 2.0, 3.0]]))
    assert _status(lambda: client.infer("iris", [bad], headers=admin)) == "StatusCode.INVALID_ARGUMENT"
    assert client.infer("iris", [_iris_input()], headers=admin).as_numpy("predict").tolist() == [2]  # still serving


def test_the_controls_guard_grpc_through_ray(grpc_url):
    client = triton.InferenceServerClient(grpc_url)
    assert _status(lambda: client.infer("iris", [_iris_input()])) == "StatusCode.UNAUTHENTICATED"
    assert _status(lambda: client.infer("iris", [_iris_input()], headers={"x-api-key": "wrong"})) == "StatusCode.UNAUTHENTICATED"
    assert _status(lambda: client.get_model_metadata("slow", headers={"x-api-key": "iris-key"})) == "StatusCode.PERMISSION_DENIED"
    assert _status(lambda: client.get_model_repository_index(headers={"x-api-key": "iris-key"})) == "StatusCode.PERMISSION_DENIED"
    assert _status(lambda: client.unload_model("iris")) == "StatusCode.UNAUTHENTICATED"
    # An admin may ask, but on Ray the models are fixed at deploy time: refused, and iris keeps serving.
    assert _status(lambda: client.unload_model("iris", headers={"x-api-key": "admin-key"})) == "StatusCode.PERMISSION_DENIED"
    assert client.get_model_repository_index(headers={"x-api-key": "admin-key"}).models
    assert client.infer("iris", [_iris_input()], headers={"x-api-key": "iris-key"}).as_numpy("predict").tolist() == [2]


def _stream(grpc_url: str, headers: dict | None, model: str = "iris", count: int = 3) -> list:
    import queue

    client = triton.InferenceServerClient(grpc_url)
    answers: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: answers.put((result, error)), headers=headers)
    try:
        for _ in range(count):
            try:
                client.async_stream_infer(model, [_iris_input()])
            except InferenceServerException:
                # The server already ended the stream (a refusal at open): tritonclient refuses to send more
                # and hands the server's error to the callback, read below. Which comes first is a race.
                break
        out = [answers.get(timeout=60)]
        while out[-1][1] is None and len(out) < count:
            out.append(answers.get(timeout=60))
        return out
    finally:
        client.stop_stream(cancel_requests=True)


def test_model_stream_infer_through_ray_behind_the_controls(grpc_url):
    answers = _stream(grpc_url, {"x-api-key": "iris-key"})
    assert [(r.as_numpy("predict").tolist(), e) for r, e in answers] == [([2], None)] * 3
    result, error = _stream(grpc_url, None)[0]
    assert result is None and error.status() == "StatusCode.UNAUTHENTICATED"
    result, error = _stream(grpc_url, {"x-api-key": "iris-key"}, model="slow")[0]
    assert result is None and error.status() == "StatusCode.PERMISSION_DENIED"
    client = triton.InferenceServerClient(grpc_url)
    assert client.infer("iris", [_iris_input()], headers={"x-api-key": "iris-key"}).as_numpy("predict").tolist() == [2]
