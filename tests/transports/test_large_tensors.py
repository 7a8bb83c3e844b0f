"""Large tensors over REST binary, REST JSON and gRPC raw (issue 15): exact round trips on real sockets.

The paths keep tensors as buffers (the body gathered once in transports/rest/http_connection.py, binary
parts written without a joined copy, gRPC raw contents cut out by wire/grpc/rawcodec.py); these
tests hold them to answering exactly what a plain encoder would, for arrays a model may return in
any layout.
"""

from __future__ import annotations

import json

import grpc
import grpc.aio
import numpy as np
import pytest

from modelport import InferOutput, InferResponse, Model
from modelport.transports.rest.http_connection import BODY_HIGH_WATER
from modelport.wire import v2_json
from modelport.wire.grpc import convert
from modelport.wire.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from ..fixture_models import EchoModel
from ..grpc_helpers import infer_request
from ..helpers import make_server

IMAGE = np.random.default_rng(1).random((1, 3, 224, 224), dtype=np.float32)


class LayoutModel(Model):
    """Answers its input in the layout the request's "layout" parameter names (a model may return any array)."""

    def __init__(self):
        super().__init__("layout")
        self.ready = True

    def predict(self, payload, headers=None):
        x = payload.inputs[0].as_numpy()
        layout = payload.parameters.get("layout", "same")
        if layout == "transposed":
            y = x.T  # non-contiguous (Fortran order)
        elif layout == "strided":
            y = x[..., ::2]  # non-contiguous, a view
        elif layout == "readonly":
            y = np.frombuffer(x.tobytes(), x.dtype).reshape(x.shape)
        elif layout == "big-endian":
            y = x.astype(x.dtype.newbyteorder(">"))
        else:
            y = x
        out = InferOutput("y", list(y.shape), "FP32")
        out.set_data_from_numpy(y, binary_data=False)
        return InferResponse(payload.id, self.name, [out])


EXPECTED = {
    "same": lambda x: x,
    "transposed": lambda x: x.T,
    "strided": lambda x: x[..., ::2],
    "readonly": lambda x: x,
    "big-endian": lambda x: x,
}


def _binary_body(array: np.ndarray, **params) -> tuple[bytes, dict]:
    raw = array.tobytes()
    head = json.dumps({
        "inputs": [{"name": "x", "shape": list(array.shape), "datatype": "FP32", "parameters": {"binary_data_size": len(raw)}}],
        "parameters": {"binary_data_output": True, **params},
    }).encode()
    return head + raw, {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}


def _decode(response) -> np.ndarray:
    assert response.status_code == 200, response.text[:300]
    length = response.headers.get("inference-header-content-length")
    answer = v2_json.decode_response(response.content, int(length) if length is not None else None)
    return answer.outputs[0].as_numpy()


@pytest.fixture
async def rest(serve):
    _, client = await serve([EchoModel(), LayoutModel()], max_request_size=256 * 1024 * 1024)
    return client


async def test_image_tensor_round_trips_exactly_over_rest_binary_and_json(rest):
    body, headers = _binary_body(IMAGE)
    response = await rest.post("/v2/models/echo/infer", content=body, headers=headers)
    assert response.headers["content-type"] == "application/octet-stream"
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.content.endswith(IMAGE.tobytes())  # the tensor's bytes, unchanged, after the JSON
    np.testing.assert_array_equal(_decode(response), IMAGE)
    doc = {"inputs": [{"name": "x", "shape": list(IMAGE.shape), "datatype": "FP32", "data": IMAGE.ravel().tolist()}]}
    np.testing.assert_array_equal(_decode(await rest.post("/v2/models/echo/infer", json=doc)), IMAGE)


@pytest.mark.parametrize("layout", list(EXPECTED))
async def test_arrays_in_any_layout_are_answered_in_c_order_little_endian(rest, layout):
    x = np.arange(64 * 1024, dtype=np.float32).reshape(64, 1024)
    body, headers = _binary_body(x, layout=layout)
    got = _decode(await rest.post("/v2/models/layout/infer", content=body, headers=headers))
    np.testing.assert_array_equal(got, EXPECTED[layout](x))
    assert got.dtype == np.dtype("<f4")


async def test_bodies_larger_than_the_protocol_buffer_and_chunked_bodies_arrive_whole(rest):
    big = np.random.default_rng(2).random((3 * BODY_HIGH_WATER // 4 // 1024 + 7, 1024), dtype=np.float32)
    body, headers = _binary_body(big)
    assert len(body) > 2 * BODY_HIGH_WATER  # handed to the app in several pieces
    np.testing.assert_array_equal(_decode(await rest.post("/v2/models/echo/infer", content=body, headers=headers)), big)

    async def chunked():  # no Content-Length: Transfer-Encoding: chunked, in uneven pieces
        for start in range(0, len(body), 100_003):
            yield body[start : start + 100_003]

    response = await rest.post("/v2/models/echo/infer", content=chunked(), headers=headers)
    np.testing.assert_array_equal(_decode(response), big)
    # And the connection serves a small request after them.
    small = np.ones((1, 4), np.float32)
    body, headers = _binary_body(small)
    np.testing.assert_array_equal(_decode(await rest.post("/v2/models/echo/infer", content=body, headers=headers)), small)


async def test_pipelined_requests_each_get_their_own_body(serve):
    import asyncio

    server, _ = await serve([EchoModel()])
    a, b = np.full((300, 1024), 1, np.float32), np.full((2, 3), 2, np.float32)
    raw = b""
    for array in (a, b):
        body, headers = _binary_body(array)
        raw += (f"POST /v2/models/echo/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode() + body
    reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port, limit=1 << 24)
    writer.write(raw)  # both requests at once, the second behind the first on the wire
    try:
        for array in (a, b):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line)
            content = await reader.readexactly(int(fields["content-length"]))
            answer = v2_json.decode_response(content, int(fields["inference-header-content-length"]))
            np.testing.assert_array_equal(answer.outputs[0].as_numpy(), array)
    finally:
        writer.close()


async def test_grpc_raw_round_trips_exactly_in_any_layout():
    # access_log: the edge sizes each answer (RawInferResponse.ByteSize) for its log line.
    server = make_server(enable_grpc=True, grpc_max_message_size=64 * 1024 * 1024, access_log=True)
    await server.start_async([EchoModel(), LayoutModel()])
    options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}", options=options)
    try:
        stub = GRPCInferenceServiceStub(channel)
        answer = await stub.ModelInfer(infer_request("echo", ("x", "FP32", IMAGE), id="r1"))
        assert answer.id == "r1" and list(answer.raw_output_contents) == [IMAGE.tobytes()]
        x = np.arange(64 * 1024, dtype=np.float32).reshape(64, 1024)
        for layout, expected in EXPECTED.items():
            answer = await stub.ModelInfer(infer_request("layout", ("x", "FP32", x), parameters={"layout": layout}))
            got = convert.response_from_proto(answer).outputs[0].as_numpy()
            np.testing.assert_array_equal(got, expected(x))
        # Typed (non-raw) requests still get typed answers.
        answer = await stub.ModelInfer(infer_request("echo", ("x", "FP32", x[:2]), raw=False))
        assert not answer.raw_output_contents
        np.testing.assert_array_equal(convert.response_from_proto(answer).outputs[0].as_numpy(), x[:2])
    finally:
        await channel.close()
        await server.stop(grace_period=2)
