"""Transformer → predictor, as KServe does it: two real servers, for each predictor protocol.

The end-to-end tests run the example in ``examples/transformer`` as two ``modelport serve``
processes (predictor first, then the transformer with ``--predictor-host``), with two extra models
beside it: ``hdr`` (the predictor reports the headers it received) and ``picky`` (the predictor
rejects every input). The in-process tests check the predictor settings one by one.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelport import InferInput, InferRequest, Model, ModelServer
from modelport.client import AsyncRESTClient, RESTClient, RESTConfig, ServerError
from modelport.model import PredictorConfig

from ..gated_models import AsyncGatedModel
from ..ports import refused_port, unused_port
from ..fixture_models import AsyncSlowModel, PickyModel, SumModel
from .serving import BAD_SIGNS, Served, wait_ready

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "transformer"
FORWARDED = {"x-request-id": "rid-7", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
             "tracestate": "vendor=1", "authorization": "Bearer t0ken"}

HEADER_ECHO = '''
import json
import numpy as np
from modelport import InferOutput, InferRequest, InferResponse, Model

WATCHED = ("x-request-id", "traceparent", "tracestate", "authorization", "x-not-forwarded")


class HeaderEcho(Model):
    """Answers with the headers it received (and the request id, over V2)."""

    def predict(self, payload, headers=None):
        seen = {k: v for k, v in (headers or {}).items() if k in WATCHED}
        if isinstance(payload, InferRequest):
            out = InferOutput("seen", [1], "BYTES")
            out.set_data_from_numpy(np.array([json.dumps(seen).encode()], dtype=object), binary_data=False)
            return InferResponse(payload.id, self.name, [out], parameters={"request_id": payload.id or ""})
        return {"predictions": [seen]}
'''

IRIS_ROWS = [
    {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
    {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3},
]


def settings(folder: Path, name: str, implementation: str) -> None:
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / name / "model-settings.json").write_text(json.dumps({"name": name, "implementation": implementation}))


def grpc_port(served: Served) -> int:
    return int(served.wait_for(r"Listening for gRPC on [^\s]+:(\d+)").group(1))


LOOPBACK = ("--host", "127.0.0.1", "--http-port", "0", "--grpc-port", "0")


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    pytest.importorskip("sklearn")
    folder = tmp_path_factory.mktemp("predictor")
    shutil.copytree(EXAMPLE / "predictor", folder, dirs_exist_ok=True)
    settings(folder, "hdr", "header_echo.HeaderEcho")
    (folder / "hdr" / "header_echo.py").write_text(HEADER_ECHO)
    settings(folder, "picky", "tests.fixture_models.PickyModel")
    served = Served(str(folder), *LOOPBACK)
    url = served.http_url()
    wait_ready(url)
    yield served, url, grpc_port(served)
    assert served.stop() == 0
    served.kill()  # closes its pipe
    assert not any(bad in served.output for bad in BAD_SIGNS), served.output


@pytest.fixture(scope="module", params=["v1", "v2", "grpc-v2"])
def transformer(request, predictor, tmp_path_factory):
    """A transformer process in front of the predictor, speaking ``protocol`` to it."""
    protocol = request.param
    _, predictor_url, predictor_grpc = predictor
    folder = tmp_path_factory.mktemp(f"transformer-{protocol}")
    shutil.copytree(EXAMPLE / "transformer", folder, dirs_exist_ok=True)
    settings(folder, "hdr", "modelport.model.Model")  # a transformer that changes nothing
    settings(folder, "picky", "modelport.model.Model")
    host = f"127.0.0.1:{predictor_grpc}" if protocol == "grpc-v2" else predictor_url.split("://")[1]
    served = Served(str(folder), *LOOPBACK, "--predictor-host", host, "--predictor-protocol", protocol)
    url = served.http_url()
    wait_ready(url)
    yield protocol, url, served
    assert served.stop() == 0
    served.kill()
    assert not any(bad in served.output for bad in BAD_SIGNS), served.output


def test_iris_through_the_transformer(transformer):
    protocol, url, _ = transformer
    r = httpx.post(url + "/v1/models/iris:predict", json={"instances": IRIS_ROWS}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": ["setosa", "virginica"]}
    # The transformer's own checks answer before the predictor is asked.
    r = httpx.post(url + "/v1/models/iris:predict", json={"instances": [{"sepal_length": 5.1}]}, timeout=30)
    assert r.status_code == 400 and "sepal_width" in r.json()["error"]
    with RESTClient(RESTConfig(protocol="v1")) as client:
        assert client.infer(url, {"instances": IRIS_ROWS[:1]}, "iris") == {"predictions": ["setosa"]}


def test_headers_and_request_id_are_forwarded(transformer):
    protocol, url, _ = transformer
    headers = {**FORWARDED, "x-not-forwarded": "hop-only"}
    if protocol == "v1":
        with RESTClient(RESTConfig(protocol="v1")) as client:
            answer = client.infer(url, {"instances": [1]}, "hdr", headers=headers)
        seen = answer["predictions"][0]
    else:
        request = InferRequest("hdr", [InferInput("x", [1], "INT32", np.array([1], np.int32))], request_id="body-id-1")
        with RESTClient() as client:
            response = client.infer(url, request, headers=headers)
        seen = json.loads(response.outputs[0].as_numpy()[0])
        assert response.parameters["request_id"] == "body-id-1" and response.id == "body-id-1"
    assert seen == FORWARDED


def test_a_predictor_error_surfaces_clearly(transformer):
    protocol, url, _ = transformer
    if protocol == "v1":
        r = httpx.post(url + "/v1/models/picky:predict", json={"instances": [[1]]}, timeout=30)
    else:
        r = httpx.post(url + "/v2/models/picky/infer", timeout=30,
                       json={"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1]}]})
    assert r.status_code == 400, r.text
    message = r.json()["error"]
    assert message.startswith("Predictor 127.0.0.1:") and "picky wants exactly one positive number" in message
    assert ("gRPC INVALID_ARGUMENT" if protocol == "grpc-v2" else "HTTP 400") in message


def test_a_protocol_mismatch_says_what_to_do(transformer):
    protocol, url, _ = transformer
    if protocol == "v1":
        r = httpx.post(url + "/v2/models/picky/infer", timeout=30,
                       json={"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1]}]})
        assert r.status_code == 400 and "predictor speaks V1" in r.json()["error"]
    else:
        r = httpx.post(url + "/v1/models/picky:predict", json={"instances": [[1]]}, timeout=30)
        assert r.status_code == 400 and "convert it in preprocess" in r.json()["error"]


# -- in process: each predictor setting ---------------------------------------------------------
X = InferRequest("m", [InferInput("x", [1, 2], "FP32", np.array([[1, 2]], np.float32))])


@pytest.fixture
async def pair(serve):
    """pair(predictor_models, protocol, **predictor_settings) -> (transformer url, predictor server, transformer server)."""

    async def start(models, protocol="v2", host=None, **options):
        predictor, _ = await serve(models, enable_grpc=protocol == "grpc-v2")
        if host is None:
            port = predictor.grpc_port if protocol == "grpc-v2" else predictor.http_port
            host = f"127.0.0.1:{port}"
        names = {m.name for m in models} | {"m"}
        transformer, _ = await serve([Model(name) for name in sorted(names)], predictor_host=host,
                                     predictor_protocol=protocol, **options)
        return f"http://127.0.0.1:{transformer.http_port}", predictor, transformer

    return start


@pytest.fixture
async def client():
    c = AsyncRESTClient(RESTConfig(retries=0))
    yield c
    await c.aclose()


@pytest.mark.parametrize("protocol", ["v2", "grpc-v2"])
async def test_timeout_setting(pair, client, protocol):
    held = AsyncGatedModel("m")  # the predictor never answers until released
    url, _, _ = await pair([held], protocol, predictor_request_timeout_seconds=0.1)
    with pytest.raises(ServerError) as info:
        await client.infer(url, X)
    # The transformer answered 504 on its own deadline while the predictor still held the request.
    assert info.value.status == 504 and held.max_active == 1
    held.release()


@pytest.mark.parametrize("protocol", ["v1", "v2", "grpc-v2"])
async def test_unreachable_predictor_is_503(pair, client, protocol):
    with refused_port() as port:
        url, _, _ = await pair([SumModel("m")], protocol, host=f"127.0.0.1:{port}")
        with pytest.raises(ServerError) as info:
            if protocol == "v1":
                async with AsyncRESTClient(RESTConfig(protocol="v1", retries=0)) as v1:
                    await v1.infer(url, {"instances": [[1, 2]]}, "m")
            else:
                await client.infer(url, X)
    assert info.value.status == 503 and "Cannot reach" in info.value.message


async def test_retries_setting(pair, client):
    """With retries, a predictor that comes up during the backoff is reached; without, 503 at once."""
    port = unused_port()
    url, _, _ = await pair([SumModel("m")], "v2", host=f"127.0.0.1:{port}", predictor_request_retries=0)
    with pytest.raises(ServerError):
        await client.infer(url, X)
    url, _, _ = await pair([SumModel("m")], "v2", host=f"127.0.0.1:{port}", predictor_request_retries=20)
    call = asyncio.ensure_future(client.infer(url, X))
    await asyncio.sleep(0.3)
    assert not call.done()
    late = ModelServer(http_port=port, host="127.0.0.1", enable_grpc=False, grace_period=1)
    await late.start_async([SumModel("m")])
    try:
        response = await asyncio.wait_for(call, 30)
        assert response.outputs[0].as_numpy().tolist() == [3]
    finally:
        await late.stop(grace_period=1)


@pytest.mark.parametrize("protocol", ["v2", "grpc-v2"])
async def test_use_ssl_setting(pair, client, protocol):
    url, _, _ = await pair([SumModel("m")], protocol, predictor_use_ssl=True)
    with pytest.raises(ServerError) as info:
        await client.infer(url, X)  # TLS to a plain-text predictor cannot work: proof the option took effect
    assert info.value.status == 503
    url, _, _ = await pair([SumModel("m")], protocol, predictor_use_ssl=False)
    assert (await client.infer(url, X)).outputs[0].as_numpy().tolist() == [3]


@pytest.mark.parametrize("protocol", ["v1", "v2", "grpc-v2"])
async def test_health_check_setting(pair, client, protocol, monkeypatch):
    monkeypatch.setattr("modelport.serving.transformer.HEALTH_INTERVAL", 0.05)
    url, predictor, transformer = await pair([SumModel("m")], protocol, predictor_health_check=True)

    async def model_ready() -> bool:
        return await client.is_model_ready(url, "m")

    async def eventually(expected: bool) -> None:
        deadline = time.monotonic() + 10
        while await model_ready() is not expected:
            assert time.monotonic() < deadline, f"model readiness never became {expected}"
            await asyncio.sleep(0.02)

    await eventually(True)
    await predictor.repository.unload("m")
    await eventually(False)
    await predictor.repository.load("m")
    await eventually(True)
    # Without the setting, the transformer's readiness is its own.
    url2, predictor2, _ = await pair([SumModel("m")], protocol, predictor_health_check=False)
    await predictor2.repository.unload("m")
    assert await client.is_model_ready(url2, "m") is True


async def test_client_is_created_lazily_and_closed_on_stop(pair, client):
    url, _, transformer = await pair([SumModel("m")], "v2")
    model = transformer.repository.get_model("m")
    assert model._predictor is not None and model._predictor._client is None
    await client.infer(url, X)
    assert model._predictor._client is not None
    await transformer.repository.unload("m")
    assert model._predictor._client is None


async def test_model_with_its_own_predictor_config(serve, client):
    """A model built in code with a PredictorConfig needs no server setting (KServe's way)."""
    predictor, _ = await serve([SumModel("m")])
    config = PredictorConfig(f"127.0.0.1:{predictor.http_port}", "v2")
    transformer, _ = await serve([Model("m", predictor_config=config)])
    url = f"http://127.0.0.1:{transformer.http_port}"
    assert (await client.infer(url, X)).outputs[0].as_numpy().tolist() == [3]
    # Models that implement predict are untouched by transformer mode; without a predictor, predict is 501.
    plain, _ = await serve([Model("m"), PickyModel("picky")])
    with pytest.raises(ServerError) as info:
        await client.infer(f"http://127.0.0.1:{plain.http_port}", X)
    assert info.value.status == 501
