"""The floor: the thinnest raw ASGI app that does what a model server must do for one request.

parse JSON (orjson) -> numpy -> scikit-learn predict -> encode JSON, with a Content-Length,
for V2 REST ``POST /v2/models/iris/infer`` and V1 ``POST /v1/models/iris:predict``, plus the
V2 health routes. No routing framework, no validation beyond what the work needs, no logging.
Nothing a real server does can cost less, so each server's distance from this is its overhead.

    uvicorn floor_app:app --app-dir bench --loop uvloop --http httptools --no-access-log

BENCH_FLOOR_BOOSTER=path/model.json (XGBoost: XGBClassifier.predict_proba) or path/model.txt
(LightGBM: Booster.predict) makes it the floor for those runtimes instead: the framework's plain call
with its defaults (every core), as a hand-written server would make it; BENCH_FLOOR_THREADS=N sets
the framework's thread count (nthread / num_threads) instead. BENCH_FLOOR_STUB=1 answers a constant
instead of predicting: the floor's cost around a model, beside bench/models/iris-stub.
"""

import os
import uuid
from pathlib import Path

import joblib
import numpy as np
import orjson

MODEL = "iris"
CLF = joblib.load(os.environ.get("BENCH_IRIS_JOBLIB", str(Path(__file__).parent / ".work" / "iris.joblib")))
PREDICT = CLF.predict


def _booster_floor(path: str, threads: str | None):
    if path.endswith(".txt"):
        import lightgbm

        booster = lightgbm.Booster(model_file=path)
        if threads is None:
            return booster.predict
        return lambda x: booster.predict(x, num_threads=int(threads))
    import xgboost

    est = xgboost.XGBClassifier()
    est.load_model(path)
    if threads is not None:
        est.get_booster().set_param({"nthread": int(threads)})
    return est.predict_proba


if os.environ.get("BENCH_FLOOR_STUB"):  # a constant answer: the floor's cost around a model (bench/models/iris-stub)
    PREDICT = lambda x: np.zeros(len(x), dtype=np.int64)  # noqa: E731
elif os.environ.get("BENCH_FLOOR_BOOSTER"):
    PREDICT = _booster_floor(os.environ["BENCH_FLOOR_BOOSTER"], os.environ.get("BENCH_FLOOR_THREADS") or None)

V2_INFER = f"/v2/models/{MODEL}/infer"
V1_PREDICT = f"/v1/models/{MODEL}:predict"
HEALTH = {"/v2/health/live", "/v2/health/ready", f"/v2/models/{MODEL}/ready", "/v1/models/" + MODEL}


async def _body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(send, status: int, payload: bytes) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
    })
    await send({"type": "http.response.body", "body": payload})


def _v2(body: bytes) -> bytes:
    req = orjson.loads(body)
    inp = req["inputs"][0]
    x = np.asarray(inp["data"], dtype=np.float32).reshape(inp["shape"])
    y = PREDICT(x)
    return orjson.dumps({
        "model_name": MODEL,
        "id": req.get("id") or str(uuid.uuid4()),
        "outputs": [{"name": "output-0", "datatype": "INT64" if y.dtype.kind == "i" else "FP64" if y.dtype.itemsize == 8 else "FP32",
                     "shape": list(y.shape), "data": y.ravel().tolist()}],
    })


def _v1(body: bytes) -> bytes:
    x = np.asarray(orjson.loads(body)["instances"], dtype=np.float32)
    return orjson.dumps({"predictions": PREDICT(x).tolist()})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path, method = scope["path"], scope["method"]
    try:
        if method == "POST" and path == V2_INFER:
            await _send(send, 200, _v2(await _body(receive)))
        elif method == "POST" and path == V1_PREDICT:
            await _send(send, 200, _v1(await _body(receive)))
        elif method == "GET" and path in HEALTH:
            await _send(send, 200, b"{}")
        else:
            await _send(send, 404, b'{"error":"not found"}')
    except Exception as exc:  # noqa: BLE001 - bad input: the floor still answers like a server would
        await _send(send, 400, orjson.dumps({"error": str(exc)}))
