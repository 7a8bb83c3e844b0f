"""bench/harness/load.py's recording client (bench/run.py takes REST latencies at c=64 from it)
against a real server: answers counted and timed, error answers and lost connections counted."""

import socket
import sys
import threading
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from harness import load  # noqa: E402

from tests.fixture_models import SumModel  # noqa: E402
from tests.helpers import server_in_thread  # noqa: E402

BODY = '{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}'


def test_answers_are_counted_and_timed():
    with server_in_thread([SumModel("sum")]) as server:
        url = f"http://127.0.0.1:{server.http_port}/v2/models/sum/infer"
        result = load.run_recorder(url, BODY, conns=4, seconds=1.0, warmup=0.2)
        missing = load.run_recorder(f"http://127.0.0.1:{server.http_port}/v2/models/nope/infer", BODY, 2, 0.5, warmup=0)
    assert result["requests"] > 20 and result["errors"] == 0
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert missing["requests"] > 0 and missing["errors_status"] == missing["requests"] and missing["errors_socket"] == 0


def test_a_server_that_drops_connections_shows_as_socket_errors():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def drop() -> None:  # reads each request, then closes without an answer
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.recv(65536)
            conn.close()

    thread = threading.Thread(target=drop, daemon=True)
    thread.start()
    try:
        result = load.run_recorder(f"http://127.0.0.1:{listener.getsockname()[1]}/", BODY, 3, 0.5, warmup=0.2)
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert result["errors_socket"] == 3 and result["errors"] == 3
