"""modelport.storage against real servers on loopback: a stdlib HTTP server and moto's S3 server.

Needs the extras ``storage`` (fsspec, aiohttp) and ``s3`` (s3fs), plus moto[server], boto3,
scikit-learn and joblib for the S3 tests.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.server
import io
import json
import os
import pathlib
import socket
import subprocess
import sys
import tarfile
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator

import pytest

from modelport.errors import StorageError
from modelport.storage import afetch, fetch

from ..ports import refused_port

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _dirs(root: pathlib.Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


# ------------------------------------------------------------------------------------ HTTP server


class ModelHTTPServer:
    """A real HTTP server on 127.0.0.1 (port 0) serving routes and counting GET requests."""

    def __init__(self) -> None:
        # path -> (status, body), or a callable(handler) that writes the response itself
        self.routes: dict[str, object] = {}
        self.hits: Counter[str] = Counter()
        self.delay = 0.0
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with outer._lock:
                    outer.hits[self.path] += 1
                if outer.delay:
                    time.sleep(outer.delay)
                route = outer.routes.get(self.path, (404, b"not found"))
                if callable(route):
                    route(self)
                    return
                status, body = route
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()


@pytest.fixture
def server() -> Iterator[ModelHTTPServer]:
    srv = ModelHTTPServer()
    yield srv
    srv.close()


@pytest.fixture
def cache(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "cache"


def test_http_single_file(server, cache):
    server.routes["/models/model.joblib"] = (200, b"model-bytes" * 1000)
    out = fetch(server.url("/models/model.joblib"), cache_dir=cache)
    assert out.is_file() and out.name == "model.joblib" and out.is_relative_to(cache)
    assert out.read_bytes() == b"model-bytes" * 1000
    assert server.hits["/models/model.joblib"] == 1


def test_http_tar_gz_and_zip_are_unpacked(server, cache):
    files = {"model.bin": b"weights", "config/settings.json": b'{"a": 1}'}
    server.routes["/m.tar.gz"] = (200, _tar_gz(files))
    server.routes["/m.zip"] = (200, _zip(files))
    for path in ("/m.tar.gz", "/m.zip"):
        out = fetch(server.url(path), cache_dir=cache)
        assert out.is_dir()
        assert (out / "model.bin").read_bytes() == b"weights"
        assert json.loads((out / "config" / "settings.json").read_text()) == {"a": 1}
        assert sorted(p.name for p in out.iterdir()) == ["config", "model.bin"]


def test_http_404_is_a_clear_error(server, cache):
    uri = server.url("/missing/model.joblib")
    with pytest.raises(StorageError) as info:
        fetch(uri, cache_dir=cache)
    assert "not found" in str(info.value) and uri in str(info.value)
    assert _dirs(cache) == []


def test_http_401_says_credentials(server, cache):
    server.routes["/private.bin"] = (401, b"who are you")
    with pytest.raises(StorageError, match="Access denied.*credentials"):
        fetch(server.url("/private.bin"), cache_dir=cache)


def test_unreachable_host_is_a_clear_error(cache):
    with refused_port() as port:
        uri = f"http://127.0.0.1:{port}/model.joblib"
        with pytest.raises(StorageError) as info:
            fetch(uri, cache_dir=cache)
    assert "Cannot reach the host" in str(info.value) and uri in str(info.value)
    assert _dirs(cache) == []


def test_second_fetch_uses_the_cache(server, cache):
    server.routes["/m.tar.gz"] = (200, _tar_gz({"w.bin": b"w"}))
    first = fetch(server.url("/m.tar.gz"), cache_dir=cache)
    second = fetch(server.url("/m.tar.gz"), cache_dir=cache)
    assert first == second and server.hits["/m.tar.gz"] == 1
    # A "restart": a new process that finds the entry on disk does not download either.
    code = f"from modelport.storage import fetch; print(fetch({server.url('/m.tar.gz')!r}, cache_dir={str(cache)!r}))"
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout.strip() == str(first)
    assert server.hits["/m.tar.gz"] == 1
    # A new version is a new entry.
    third = fetch(server.url("/m.tar.gz"), cache_dir=cache, version="2")
    assert third != first and server.hits["/m.tar.gz"] == 2


def test_concurrent_fetches_in_threads_download_once(server, cache):
    server.routes["/model.bin"] = (200, b"x" * 100_000)
    server.delay = 0.3
    barrier = threading.Barrier(8)

    def work(_: int) -> pathlib.Path:
        barrier.wait()  # all eight start together
        return fetch(server.url("/model.bin"), cache_dir=cache)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(8)))
    assert len(results) == 8 and len(set(results)) == 1
    assert server.hits["/model.bin"] == 1


def test_concurrent_afetch_downloads_once(server, cache):
    server.routes["/m.zip"] = (200, _zip({"w.bin": b"w"}))
    server.delay = 0.2

    async def main() -> list[pathlib.Path]:
        ticks = 0

        async def ticker() -> None:  # proves the loop keeps running during the download
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        tick = asyncio.create_task(ticker())
        outs = await asyncio.gather(*(afetch(server.url("/m.zip"), cache_dir=cache) for _ in range(4)))
        tick.cancel()
        assert ticks >= 5
        return outs

    outs = asyncio.run(main())
    assert len(set(outs)) == 1 and (outs[0] / "w.bin").read_bytes() == b"w"
    assert server.hits["/m.zip"] == 1


def test_concurrent_processes_download_once(server, cache):
    server.routes["/m.tar.gz"] = (200, _tar_gz({"w.bin": b"w"}))
    server.delay = 0.5
    code = "import sys; from modelport.storage import fetch; print(fetch(sys.argv[1], cache_dir=sys.argv[2]))"
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "error", "-c", code, server.url("/m.tar.gz"), str(cache)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outs.append(out.strip())
    assert len(set(outs)) == 1 and (pathlib.Path(outs[0]) / "w.bin").read_bytes() == b"w"
    assert server.hits["/m.tar.gz"] == 1


def test_server_error_leaves_nothing_and_a_retry_succeeds(server, cache):
    body = _tar_gz({"w.bin": b"w"})
    answers = iter([(500, b"boom"), (200, body)])

    def flaky(h: http.server.BaseHTTPRequestHandler) -> None:
        status, data = next(answers)
        h.send_response(status)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    server.routes["/m.tar.gz"] = flaky
    uri = server.url("/m.tar.gz")
    with pytest.raises(StorageError) as info:
        fetch(uri, cache_dir=cache)
    assert "HTTP 500" in str(info.value) and uri in str(info.value)
    assert _dirs(cache) == []
    out = fetch(uri, cache_dir=cache)
    assert (out / "w.bin").read_bytes() == b"w"
    assert server.hits["/m.tar.gz"] == 2


def test_connection_cut_midway_leaves_nothing_and_a_retry_succeeds(server, cache):
    payload = b"0123456789" * 50_000
    cut = [True]

    def truncating(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        if cut[0]:
            cut[0] = False
            h.wfile.write(payload[: len(payload) // 3])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        h.wfile.write(payload)

    server.routes["/model.bin"] = truncating
    uri = server.url("/model.bin")
    with pytest.raises(StorageError, match="cut off before it completed") as info:
        fetch(uri, cache_dir=cache)
    assert uri in str(info.value)
    assert _dirs(cache) == []
    out = fetch(uri, cache_dir=cache)
    assert out.read_bytes() == payload


def test_http_archive_with_escaping_member_is_rejected(server, cache):
    server.routes["/evil.tar.gz"] = (200, _tar_gz({"../../evil.txt": b"x"}))
    with pytest.raises(StorageError, match="outside"):
        fetch(server.url("/evil.tar.gz"), cache_dir=cache)
    assert _dirs(cache) == []


# ------------------------------------------------------------------------------------ S3 (moto)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    pytest.importorskip("s3fs")
    pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    srv = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    yield f"http://{host}:{port}"
    srv.stop()


@pytest.fixture
def aws_env(monkeypatch, tmp_path) -> None:
    """Test credentials, and nothing from the developer's own AWS configuration."""
    for var in list(os.environ):
        if var.startswith(("AWS_", "S3_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture(scope="module")
def iris_model() -> tuple[bytes, object, object]:
    """An iris LogisticRegression, joblib-dumped; with the data to check its predictions."""
    joblib = pytest.importorskip("joblib")
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    buf = io.BytesIO()
    joblib.dump(model, buf)
    return buf.getvalue(), X, model.predict(X)


@pytest.fixture
def bucket(moto_endpoint, aws_env) -> tuple[object, str]:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    name = f"models-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return s3, name


def _assert_iris(path: pathlib.Path, iris_model) -> None:
    import joblib

    _, X, expected = iris_model
    loaded = joblib.load(path)
    assert (loaded.predict(X) == expected).all()
    assert (loaded.predict(X) == expected).mean() == 1.0


def test_s3_single_object(bucket, iris_model, moto_endpoint, cache):
    s3, name = bucket
    s3.put_object(Bucket=name, Key="iris/v1/model.joblib", Body=iris_model[0])
    out = fetch(
        f"s3://{name}/iris/v1/model.joblib",
        cache_dir=cache,
        storage_options={"endpoint_url": moto_endpoint},
    )
    assert out.is_file() and out.name == "model.joblib" and out.is_relative_to(cache)
    _assert_iris(out, iris_model)


def test_s3_prefix_is_copied_recursively(bucket, iris_model, moto_endpoint, cache, monkeypatch):
    s3, name = bucket
    s3.put_object(Bucket=name, Key="iris/model.joblib", Body=iris_model[0])
    s3.put_object(Bucket=name, Key="iris/model-settings.json", Body=b'{"name": "iris"}')
    s3.put_object(Bucket=name, Key="iris/extra/labels.txt", Body=b"setosa\nversicolor\nvirginica\n")
    s3.put_object(Bucket=name, Key="iris-other/not-me.txt", Body=b"x")  # shares the prefix text
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)  # endpoint from the environment
    out = fetch(f"s3://{name}/iris/", cache_dir=cache)
    assert out.is_dir()
    found = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert found == ["extra/labels.txt", "model-settings.json", "model.joblib"]
    _assert_iris(out / "model.joblib", iris_model)
    # Without the trailing slash: the same prefix, the same cache entry.
    assert fetch(f"s3://{name}/iris", cache_dir=cache) == out


def test_s3_tar_gz_with_s3_endpoint_env(bucket, iris_model, moto_endpoint, cache, monkeypatch):
    s3, name = bucket
    archive = _tar_gz({"model.joblib": iris_model[0], "model-settings.json": b"{}"})
    s3.put_object(Bucket=name, Key="iris.tar.gz", Body=archive)
    # KServe-style: host:port without a scheme, plus S3_USE_HTTPS=0.
    monkeypatch.setenv("S3_ENDPOINT", moto_endpoint.removeprefix("http://"))
    monkeypatch.setenv("S3_USE_HTTPS", "0")
    out = fetch(f"s3://{name}/iris.tar.gz", cache_dir=cache)
    assert sorted(p.name for p in out.iterdir()) == ["model-settings.json", "model.joblib"]
    _assert_iris(out / "model.joblib", iris_model)


@pytest.mark.parametrize("key", ["nope/model.joblib", "nope/"])
def test_s3_missing_key_is_a_clear_error(bucket, moto_endpoint, cache, key):
    _, name = bucket
    uri = f"s3://{name}/{key}"
    with pytest.raises(StorageError) as info:
        fetch(uri, cache_dir=cache, storage_options={"endpoint_url": moto_endpoint})
    assert "not found" in str(info.value) and uri in str(info.value)
    assert _dirs(cache) == []


def test_s3_missing_bucket_is_a_clear_error(moto_endpoint, aws_env, cache):
    uri = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/model.joblib"
    with pytest.raises(StorageError, match="not found"):
        fetch(uri, cache_dir=cache, storage_options={"endpoint_url": moto_endpoint})


def test_s3_unreachable_endpoint_is_a_clear_error(aws_env, cache):
    with refused_port() as port, pytest.raises(StorageError, match="Cannot reach the host.*AWS_ENDPOINT_URL"):
        fetch(
            "s3://bucket/model.joblib",
            cache_dir=cache,
            storage_options={
                # botocore's retries would take ~10 s against a closed port; one attempt is enough
                "endpoint_url": f"http://127.0.0.1:{port}",
                "config_kwargs": {"retries": {"max_attempts": 1}},
            },
        )
    assert _dirs(cache) == []


def test_s3_credentials_are_enforced(bucket, iris_model, moto_endpoint, cache, monkeypatch):
    """With moto's IAM enforcement on, a real key works and wrong ones are refused clearly."""
    import boto3
    from moto import settings as moto_settings

    s3, name = bucket
    s3.put_object(Bucket=name, Key="model.joblib", Body=iris_model[0])
    iam = boto3.client(
        "iam",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    user = f"reader-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="read",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # enforce from now on

    uri = f"s3://{name}/model.joblib"
    good = {"endpoint_url": moto_endpoint, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    bad_secret = dict(good, secret="wrong-secret")
    bad_key = dict(good, key="AKIAUNKNOWNKEY000000")
    for options in (bad_key, bad_secret):
        with pytest.raises(StorageError) as info:
            fetch(uri, cache_dir=cache, storage_options=options)
        assert "Access denied" in str(info.value) and "AWS_ACCESS_KEY_ID" in str(info.value)
        assert uri in str(info.value)
    assert _dirs(cache) == []
    _assert_iris(fetch(uri, cache_dir=cache, storage_options=good), iris_model)


def test_s3_missing_extra_is_named(monkeypatch, cache):
    monkeypatch.setitem(sys.modules, "s3fs", None)
    with pytest.raises(StorageError, match=r"pip install 'modelport\[s3\]'"):
        fetch("s3://bucket/model.joblib", cache_dir=cache)
