"""gRPC helpers for the benchmark, run inside bench/.venvs/kserve (it ships the generated V2 stubs).

    python bench/grpc_tool.py frame --rows-file bench/.work/iris_rows.json --rows 1 --out frame.bin
        Serialize a ModelInferRequest (model "iris", one FP32 input "input-0" of shape [rows,4]) and
        prepend the 5-byte gRPC frame header (0 = uncompressed, 4-byte big-endian length), so that
        h2load can replay it as the body of POST /inference.GRPCInferenceService/ModelInfer.
    python bench/grpc_tool.py check --target 127.0.0.1:PORT --frame frame.bin
        Send that same message once with a grpc.aio client and print the decoded outputs as JSON;
        exit 1 on any gRPC error (h2load sees only HTTP/2 status 200; gRPC errors travel in trailers).
"""

import argparse
import asyncio
import json
import struct
import sys

from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

METHOD = "/inference.GRPCInferenceService/ModelInfer"


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


async def check(target: str, frame: bytes) -> dict:
    import grpc

    (length,) = struct.unpack(">I", frame[1:5])
    message = frame[5 : 5 + length]
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(METHOD, request_serializer=lambda b: b,
                                   response_deserializer=pb.ModelInferResponse.FromString)
        response = await call(message, timeout=10)
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
    c = sub.add_parser("check")
    c.add_argument("--target", required=True)
    c.add_argument("--frame", required=True)
    args = parser.parse_args()
    if args.cmd == "frame":
        with open(args.rows_file) as fh:
            rows = json.load(fh)["rows"][: args.rows]
        with open(args.out, "wb") as fh:
            fh.write(build_frame(rows))
        return 0
    with open(args.frame, "rb") as fh:
        frame = fh.read()
    try:
        print(json.dumps(asyncio.run(check(args.target, frame))))
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
