"""The servers under test: how each one is configured and started.

A *config* is one way of running one *peer* (e.g. KServe as shipped, KServe with request logging
off). Ratios in the report compare modelport with each config, and with the best config per peer.
Every config serves the same bench/.work/iris.joblib under model name ``iris``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import envs

BENCH = envs.BENCH
PEERS = BENCH / "peers"


@dataclass
class Ctx:
    """Everything a config needs to build its command line for one start."""

    http_port: int
    grpc_port: int
    metrics_port: int
    work: Path  # a fresh folder for this start (settings files, model repo, cwd)
    joblib: Path
    scenario: str  # "infer" or "health"
    extra_settings: dict = field(default_factory=dict)  # merged into the model's model-settings.json
    extra_flags: list[str] = field(default_factory=list)  # appended to the command line


@dataclass
class ServerConfig:
    name: str
    peer: str
    venv: str
    protocols: tuple[str, ...]
    scenarios: tuple[str, ...]
    build: Callable[[Ctx], list[str]]
    note: str
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the server process
    ready_path: str = "/v2/health/ready"  # GET answers 200 once the server serves (BentoML: /readyz)


def _write_json(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


# -- floor -------------------------------------------------------------------------------------------
def _floor(ctx: Ctx) -> list[str]:
    return [
        str(envs.python("floor")), "-m", "uvicorn", "floor_app:app", "--app-dir", str(BENCH),
        "--host", "127.0.0.1", "--port", str(ctx.http_port),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
        *ctx.extra_flags,
    ]


def _raw_floor(ctx: Ctx) -> list[str]:
    return [str(envs.python("floor")), str(BENCH / "raw_floor.py"), str(ctx.http_port)]


# -- KServe ------------------------------------------------------------------------------------------
# KServe's default log config with the two per-request loggers turned down to WARNING.
KSERVE_QUIET_LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(process)s %(name)s %(levelname)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
    "loggers": {
        # WARNING, not INFO: kserve's gRPC interceptor logs "grpc method: ..." at INFO on every call.
        "kserve": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "kserve.trace": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
    },
}


def _kserve(quiet: bool) -> Callable[[Ctx], list[str]]:
    def build(ctx: Ctx) -> list[str]:
        argv = [
            str(envs.python("kserve")), str(PEERS / "kserve_iris.py"),
            "--model_name", "iris", "--http_port", str(ctx.http_port), "--grpc_port", str(ctx.grpc_port),
        ]
        if ctx.scenario == "health":
            argv += ["--burn_ms", str(ctx.extra_settings.get("burn_ms", 50))]
        if quiet:
            log_config = _write_json(ctx.work / "kserve-log.json", KSERVE_QUIET_LOG_CONFIG)
            argv += ["--enable_latency_logging", "False", "--log_config_file", str(log_config)]
        return argv + ctx.extra_flags

    return build


# fastapi >= 0.12x deprecates ORJSONResponse, which KServe 0.21 uses as its default response class:
# a warning is printed on every request (two lines). Quiet configs filter it by message.
KSERVE_QUIET_ENV = {"PYTHONWARNINGS": "ignore:ORJSONResponse is deprecated"}


# -- gRPC floor ----------------------------------------------------------------------------------------
def _grpc_floor(predict: bool) -> Callable[[Ctx], list[str]]:
    """bench/grpc_floor.py in the modelport venv (it has grpcio, numpy, scikit-learn and the stubs)."""

    def build(ctx: Ctx) -> list[str]:
        return [str(envs.python("modelport")), str(BENCH / "grpc_floor.py"), str(ctx.grpc_port),
                "--http", str(ctx.http_port), *(["--predict"] if predict else [])]

    return build


# -- MLServer ----------------------------------------------------------------------------------------
def _mlserver(parallel_workers: int | None, quiet: bool = False) -> Callable[[Ctx], list[str]]:
    def build(ctx: Ctx) -> list[str]:
        repo = ctx.work / "models"
        settings = {"host": "127.0.0.1", "http_port": ctx.http_port, "grpc_port": ctx.grpc_port,
                    "metrics_port": ctx.metrics_port}
        if parallel_workers is not None:
            settings["parallel_workers"] = parallel_workers
        if quiet:
            settings["debug"] = False  # MLServer's default debug=True turns on uvicorn's access log
        _write_json(repo / "settings.json", settings)
        model = {"name": "iris", "implementation": "mlserver_sklearn.SKLearnModel",
                 "parameters": {"uri": str(ctx.joblib)}}
        if ctx.scenario == "health":
            model["implementation"] = "mlserver_burn.BurnSKLearnModel"
            model["parameters"]["extra"] = {"burn_ms": ctx.extra_settings.get("burn_ms", 50)}
        model.update({k: v for k, v in ctx.extra_settings.items() if k != "burn_ms"})
        _write_json(repo / "iris" / "model-settings.json", model)
        return [str(envs.bin_path("mlserver", "mlserver")), "start", str(repo), *ctx.extra_flags]

    return build


# -- LitServe, BentoML, Ray Serve (issue 24) ----------------------------------------------------------
# The Python-native peers: each serves the same joblib through bench/peers/iris_codec.py (the same V1/V2
# JSON in and out); none has gRPC V2, so their grpc cells are not run. Each as shipped and as its docs
# recommend for production; see bench/README.md for the settings and why.
def _litserve(*flags: str) -> Callable[[Ctx], list[str]]:
    def build(ctx: Ctx) -> list[str]:
        return [str(envs.python("litserve")), str(PEERS / "litserve_iris.py"), "--port", str(ctx.http_port),
                *flags, *ctx.extra_flags]

    return build


def _bentoml(ctx: Ctx) -> list[str]:
    return [str(envs.bin_path("bentoml", "bentoml")), "serve", "bentoml_iris:Iris", "--working-dir", str(PEERS),
            "--host", "127.0.0.1", "--port", str(ctx.http_port), *ctx.extra_flags]


def _rayserve(*flags: str) -> Callable[[Ctx], list[str]]:
    def build(ctx: Ctx) -> list[str]:
        return [str(envs.python("rayserve")), str(PEERS / "rayserve_iris.py"), "--port", str(ctx.http_port),
                *flags, *ctx.extra_flags]

    return build


# Ray's own usage-stats reporting would try the network at start; the bench machines have none.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}


# -- modelport ---------------------------------------------------------------------------------------
# The command line; {repo} {http} {grpc} are filled in. Override with $BENCH_MODELPORT_CMD while the
# CLI is still settling, e.g. BENCH_MODELPORT_CMD='{venv}/bin/modelport serve {repo} --http-port {http}'.
MODELPORT_CMD = "{venv}/bin/modelport serve {repo} --host 127.0.0.1 --http-port {http} --grpc-port {grpc}"


def _modelport_with(settings: dict | None = None, flags: tuple[str, ...] = ()) -> Callable[[Ctx], list[str]]:
    """A modelport config with fixed model settings and flags (batching, worker processes)."""

    def build(ctx: Ctx) -> list[str]:
        return _modelport(ctx, settings or {}) + list(flags)

    return build


def _modelport(ctx: Ctx, preset: dict | None = None) -> list[str]:
    source = BENCH / "models" / ("burn" if ctx.scenario == "health" else "iris")
    model = json.loads((source / "model-settings.json").read_text())
    model.update(preset or {})
    if "burn_ms" in ctx.extra_settings:
        model.setdefault("parameters", {}).setdefault("extra", {})["burn_ms"] = ctx.extra_settings["burn_ms"]
    # The hook for later options (e.g. an inference process pool): anything else is merged as is.
    model.update({k: v for k, v in ctx.extra_settings.items() if k != "burn_ms"})
    repo = ctx.work / "models"
    if repo.exists():
        shutil.rmtree(repo)
    _write_json(repo / "iris" / "model-settings.json", model)
    template = os.environ.get("BENCH_MODELPORT_CMD", MODELPORT_CMD)
    cmd = template.format(venv=envs.VENVS / "modelport", repo=repo, http=ctx.http_port, grpc=ctx.grpc_port)
    return shlex.split(cmd) + ctx.extra_flags


def _modelport_sklearn(ctx: Ctx) -> list[str]:
    """modelport's built-in scikit-learn runtime on the same joblib (no user code)."""
    return _modelport(ctx, {"implementation": "sklearn", "parameters": {"uri": str(ctx.joblib)}})


CONFIGS: dict[str, ServerConfig] = {c.name: c for c in [
    ServerConfig("floor", "floor", "floor", ("v1", "v2"), ("infer",), _floor,
                 "raw ASGI: uvicorn+httptools+uvloop, orjson, predict; no logging (bench/floor_app.py)"),
    ServerConfig("raw-floor", "floor", "floor", ("v1", "v2"), ("infer",), _raw_floor,
                 "below the floor: the floor's parse, predict and encode from httptools callbacks, no ASGI "
                 "(bench/raw_floor.py): what any Python HTTP/1.1 server calling the same predict could reach"),
    ServerConfig("grpc-floor", "floor", "modelport", ("grpc",), ("infer",), _grpc_floor(True),
                 "raw grpc.aio: FP32 contents -> numpy -> predict -> response proto, no interceptors (bench/grpc_floor.py)"),
    ServerConfig("grpc-canned", "floor", "modelport", ("grpc",), ("infer",), _grpc_floor(False),
                 "raw grpc.aio answering a canned response: grpc.aio's own cost per call (bench/grpc_floor.py)"),
    ServerConfig("kserve", "kserve", "kserve", ("v1", "v2", "grpc"), ("infer", "health"), _kserve(False),
                 "KServe as shipped (latency log line + access log per request)"),
    ServerConfig("kserve-quiet", "kserve", "kserve", ("v1", "v2", "grpc"), ("infer", "health"), _kserve(True),
                 "KServe, --enable_latency_logging False, log config with kserve, kserve.trace and "
                 "uvicorn.access at WARNING, PYTHONWARNINGS filtering fastapi's per-request ORJSONResponse warning",
                 env=KSERVE_QUIET_ENV),
    ServerConfig("mlserver", "mlserver", "mlserver", ("v2", "grpc"), ("infer", "health"), _mlserver(None),
                 "MLServer as shipped (parallel_workers=1: inference in a worker process)"),
    ServerConfig("mlserver-pw0", "mlserver", "mlserver", ("v2", "grpc"), ("infer", "health"), _mlserver(0),
                 "MLServer, parallel_workers=0 (inference in-process)"),
    ServerConfig("mlserver-pw0-quiet", "mlserver", "mlserver", ("v2", "grpc"), ("infer", "health"),
                 _mlserver(0, quiet=True), "MLServer, parallel_workers=0 and debug=false (no access log)"),
    ServerConfig("litserve", "litserve", "litserve", ("v1", "v2"), ("infer",), _litserve(),
                 "LitServe as shipped: LitServer([V2 LitAPI, V1 LitAPI]), 1 worker, multiprocessing queues, "
                 "uvicorn access log (bench/peers/litserve_iris.py)"),
    ServerConfig("litserve-fast", "litserve", "litserve", ("v1", "v2"), ("infer",), _litserve("--tuned"),
                 "LitServe tuned: fast_queue=True (ZeroMQ), log_level warning, no access log"),
    ServerConfig("litserve-batch", "litserve", "litserve", ("v1", "v2"), ("infer",), _litserve("--batch"),
                 "LitServe tuned + dynamic batching: max_batch_size 64, batch_timeout 2 ms"),
    ServerConfig("bentoml", "bentoml", "bentoml", ("v1", "v2"), ("infer",), _bentoml,
                 "BentoML as shipped: @bentoml.service() with sync @bentoml.api routes, 1 worker, access log "
                 "(bench/peers/bentoml_iris.py)", ready_path="/readyz"),
    ServerConfig("bentoml-quiet", "bentoml", "bentoml", ("v1", "v2"), ("infer",), _bentoml,
                 "BentoML, 1 worker, access log off (logging.access.enabled false)",
                 env={"BENCH_BENTOML_QUIET": "1"}, ready_path="/readyz"),
    ServerConfig("bentoml-tuned", "bentoml", "bentoml", ("v1", "v2"), ("infer",), _bentoml,
                 "BentoML as its docs recommend for a CPU-bound model: workers=\"cpu_count\" (2 here), access log off",
                 env={"BENCH_BENTOML_QUIET": "1", "BENCH_BENTOML_WORKERS": "cpu_count"}, ready_path="/readyz"),
    ServerConfig("rayserve", "rayserve", "rayserve", ("v1", "v2"), ("infer",), _rayserve(),
                 "Ray Serve as shipped: one @serve.deployment (defaults: 1 replica, max_ongoing_requests 5) behind "
                 "the HTTP proxy, serve.run; private local Ray, 2 CPUs (bench/peers/rayserve_iris.py)", env=RAY_ENV),
    ServerConfig("rayserve-tuned", "rayserve", "rayserve", ("v1", "v2"), ("infer",), _rayserve("--tuned"),
                 "Ray Serve tuned: num_replicas 1, max_ongoing_requests 64, access log off, log level WARNING, "
                 "RAY_SERVE_THROUGHPUT_OPTIMIZED=1", env={**RAY_ENV, "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}),
    ServerConfig("modelport", "modelport", "modelport", ("v1", "v2", "grpc", "grpc-stream"), ("infer", "health"), _modelport,
                 "modelport serve, bench/models/iris (bench/peers/modelport_iris.py)"),
    ServerConfig("modelport-sklearn", "modelport", "modelport", ("v1", "v2", "grpc", "grpc-stream"), ("infer",), _modelport_sklearn,
                 "modelport serve with its built-in sklearn runtime (implementation \"sklearn\") on the same joblib"),
    ServerConfig("modelport-batch", "modelport", "modelport", ("v1", "v2", "grpc", "grpc-stream"), ("infer",),
                 _modelport_with({"max_batch_size": 64, "max_batch_time": 0.002}),
                 "modelport with adaptive batching: max_batch_size 64, max_batch_time 2 ms"),
    ServerConfig("modelport-2w", "modelport", "modelport", ("v1", "v2", "grpc", "grpc-stream"), ("infer",),
                 _modelport_with(flags=("--workers", "2")), "modelport with two front-end processes (--workers 2)"),
    ServerConfig("modelport-pool", "modelport", "modelport", ("v1", "v2", "grpc"), ("health",),
                 _modelport_with({"parallel_workers": 2}),
                 "modelport with an inference process pool (parallel_workers 2)"),
]}

DEFAULT_ORDER = ["floor", "kserve", "kserve-quiet", "mlserver", "mlserver-pw0", "mlserver-pw0-quiet",
                 "litserve", "litserve-fast", "bentoml", "bentoml-quiet", "bentoml-tuned",
                 "rayserve", "rayserve-tuned", "modelport"]
# The issue-24 peers alone, for `--servers` (run.py also accepts this name: --servers python-peers).
PYTHON_PEERS = ["litserve", "litserve-fast", "litserve-batch", "bentoml", "bentoml-quiet", "bentoml-tuned",
                "rayserve", "rayserve-tuned"]


def server_env(config: ServerConfig, ctx: Ctx) -> dict[str, str]:
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONWARNINGS", "RAY_ADDRESS")
    prefixes = ("MODELPORT_", "MLSERVER_", "KSERVE_", "BENTOML_", "BENCH_BENTOML_", "RAY_SERVE_")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith(prefixes)}
    env.update({"PYTHONPATH": str(PEERS), "BENCH_IRIS_JOBLIB": str(ctx.joblib)})
    env.update(config.env)
    return env
