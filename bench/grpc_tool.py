"""gRPC helpers for the benchmark, run inside bench/.venvs/kserve (it ships the generated V2 stubs).

    python bench/grpc_tool.py frame --rows-file bench/.work/iris_rows.json --rows 1 --out frame.bin
        Serialize a ModelInferRequest (model "iris", one FP32 input "input-0" of shape [rows,4]) and
        prepend the 5-byte gRPC frame header (0 = uncompressed, 4-byte big-endian length), so that
        h2load can replay it as the body of POST /inference.GRPCInferenceService/ModelInfer.
        ``--repeat K`` writes K such frames back to back: the body of one ModelStreamInfer call
        carrying K requests (h2load replays it as one stream).
    python bench/grpc_tool.py check --target 127.0.0.1:PORT --frame frame.bin
        Send that same message once with a grpc.aio client and print the decoded outputs as JSON;
        exit 1 on any gRPC error (h2load sees only HTTP/2 status 200; gRPC errors travel in trailers).
    python bench/grpc_tool.py check-stream --target 127.0.0.1:PORT --frame stream.bin
        Send every message of a --repeat frame on one ModelStreamInfer stream; print the outputs of the
        first answer and the answer count as JSON; exit 1 on a gRPC error, an ``error_message`` or a
        count that differs from the number of requests.
"""

import argparse
import asyncio
import json
import struct
import sys

from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

METHOD = "/inference.GRPCInferenceService/ModelInfer"
STREAM_METHOD = "/inference.GRPCInferenceService/ModelStreamInfer"


def build_frame(rows: list[list[float]]) -> bytes:
    flat = [v for row in rows for v in row]
    request = pb.ModelInferRequest(
        model_name="iris",
        inputs=[pb.ModelInferRequest.InferInputTensor(
            name="input-0", datatype="FP32", shape=[len(rows), len(rows[0])],
            contents=pb.InferTensorContents(fp32_contents=flat),
        )],
    )
    message = request.SerializeToString()
    return struct.pack(">BI", 0, len(message)) + message


def split_frames(data: bytes) -> list[bytes]:
    out = []
    while data:
        (length,) = struct.unpack(">I", data[1:5])
        out.append(data[5 : 5 + length])
        data = data[5 + length :]
    return out


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[i]
        value |= (b & 0x7F) << shift
        i += 1
        if b < 0x80:
            return value, i
        shift += 7


def parse_stream_response(buf: bytes) -> tuple[str, bytes]:
    """(error_message, infer_response bytes) of a ModelStreamInferResponse (fields 1 and 2; the kserve
    venv's generated module lacks that message, and both fields are length-delimited)."""
    error, infer, i = "", b"", 0
    while i < len(buf):
        key, i = _varint(buf, i)
        length, i = _varint(buf, i)  # both fields are wire type 2
        value, i = buf[i : i + length], i + length
        if key >> 3 == 1:
            error = value.decode()
        elif key >> 3 == 2:
            infer = value
    return error, infer


async def check_stream(target: str, frame: bytes) -> dict:
    import grpc

    messages = split_frames(frame)
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.stream_stream(STREAM_METHOD, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        answers = [parse_stream_response(raw) async for raw in call(iter(messages), timeout=30)]
    errors = [e for e, _ in answers if e]
    if errors or len(answers) != len(messages):
        raise RuntimeError(f"{len(answers)} answers for {len(messages)} requests; errors: {errors[:3]}")
    return {**describe(pb.ModelInferResponse.FromString(answers[0][1])), "answers": len(answers)}


async def check(target: str, frame: bytes) -> dict:
    import grpc

    message = split_frames(frame)[0]
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(METHOD, request_serializer=lambda b: b,
                                   response_deserializer=pb.ModelInferResponse.FromString)
        response = await call(message, timeout=10)
    return describe(response)


def describe(response) -> dict:
    outputs = []
    for i, out in enumerate(response.outputs):
        entry = {"name": out.name, "datatype": out.datatype, "shape": list(out.shape)}
        if i < len(response.raw_output_contents):
            entry["raw_bytes"] = len(response.raw_output_contents[i])
        else:
            c = out.contents
            entry["data"] = list(c.int64_contents or c.int_contents or c.fp32_contents or c.fp64_contents)
        outputs.append(entry)
    return {"model_name": response.model_name, "outputs": outputs}


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("frame")
    f.add_argument("--rows-file", required=True)
    f.add_argument("--rows", type=int, required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--repeat", type=int, default=1, help="frames back to back (one ModelStreamInfer body)")
    for name in ("check", "check-stream"):
        c = sub.add_parser(name)
        c.add_argument("--target", required=True)
        c.add_argument("--frame", required=True)
    args = parser.parse_args()
    if args.cmd == "frame":
        with open(args.rows_file) as fh:
            rows = json.load(fh)["rows"][: args.rows]
        with open(args.out, "wb") as fh:
            fh.write(build_frame(rows) * args.repeat)
        return 0
    with open(args.frame, "rb") as fh:
        frame = fh.read()
    try:
        run = check_stream if args.cmd == "check-stream" else check
        print(json.dumps(asyncio.run(run(args.target, frame))))
    except Exception as exc:  # noqa: BLE001 - grpc.aio.AioRpcError and connection failures alike
        if hasattr(exc, "code") and hasattr(exc, "details"):
            message = f"gRPC {exc.code().name}: {exc.details()}"
        else:
            message = f"{type(exc).__name__}: {exc}"
        print(json.dumps({"error": message}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
