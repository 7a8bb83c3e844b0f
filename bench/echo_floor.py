"""The large-tensor floors: loopback echo servers that do nothing but move the bytes.

    python bench/echo_floor.py http PORT   # HTTP/1.1: a Content-Length body in, the same bytes out
    python bench/echo_floor.py grpc PORT   # grpc.aio: ModelInfer's request bytes answered as they are

Each runs in its own process on uvloop (when installed), as the servers under test do, and is driven
by the same client over the same framing, so a server's distance from it is its own work. The HTTP
echo reads the head, then exactly Content-Length bytes, and writes a status line and the body back:
a memcpy-bound HTTP server. The gRPC echo registers ModelInfer with identity (de)serializers, so no
protobuf parse or serialize happens: what is left is grpc.aio moving a message each way.
"""

import asyncio
import sys


async def http_echo(port: int) -> None:
    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
                writer.write(body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, limit=1 << 26)
    async with server:
        await server.serve_forever()


async def grpc_echo(port: int) -> None:
    import grpc

    async def infer(request: bytes, context) -> bytes:
        return _raw_inputs_as_outputs(request)

    handler = grpc.unary_unary_rpc_method_handler(infer, request_deserializer=None, response_serializer=None)
    options = [("grpc.max_send_message_length", 1 << 28), ("grpc.max_receive_message_length", 1 << 28)]
    server = grpc.aio.server(options=options)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("inference.GRPCInferenceService", {"ModelInfer": handler}),)
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _raw_inputs_as_outputs(request: bytes) -> bytes:
    """A ModelInferRequest's bytes as a ModelInferResponse's: the fields the two share keep their
    numbers (name, version, id, parameters, tensors 1-5); raw_input_contents (7) become
    raw_output_contents (6) by rewriting one tag byte each. One copy of the tensor, as any echo makes."""
    view, parts, start, pos = memoryview(request), [], 0, 0
    while pos < len(request):
        key_at = pos
        key, pos = _varint(request, pos)
        if key & 7 == 2:
            length, pos = _varint(request, pos)
            if key == (7 << 3) | 2:
                parts += [view[start:key_at], b"\x32"]
                start = key_at + 1
            pos += length
        elif key & 7 == 0:
            _, pos = _varint(request, pos)
        else:
            pos += 8 if key & 7 == 1 else 4
    parts.append(view[start:])
    return b"".join(parts)


def _tune_malloc() -> None:
    """The same glibc tuning modelport applies (modelport/serving/malloc_tuning.py, 64 MiB): without it the echo
    page-faults its buffers in on every request and is no longer memcpy-bound."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
    mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    _tune_malloc()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(http_echo(port) if kind == "http" else grpc_echo(port))


if __name__ == "__main__":
    main()
