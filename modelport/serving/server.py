"""ModelServer: builds its pieces from the settings (one function, :mod:`.compose`), starts and stops
the transports. ``ModelServer(settings=...).app`` is the complete outermost ASGI app.

``start(models)`` blocks and owns the process's signals, as KServe's does; ``start_async`` and
``stop`` are for embedding and tests. Shutdown drains: readiness goes false, new requests are
refused, in-flight requests finish (bounded by the grace period), models' stop hooks run, and every
listener closes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import signal
import socket
import sys
from typing import Any, Iterable

import uvicorn

from . import malloc_tuning
from .compose import build, grpc_checks
from .heap import Freezer
from .listener import Listener
from ..errors import StartupError
from ..model import Model, PredictorConfig
from ..repository.entries import ModelRepository
from ..routing import compose
from ..execution.runner import ModelRunner
from ..settings import ModelSettings, ServerSettings, model_option, validate_server_settings
from ..transports.rest.http_connection import ConnectionGuard, Limits

logger = logging.getLogger("modelport")


class _Uvicorn(uvicorn.Server):
    listen_socket: socket.socket | None = None

    # Signals belong to ModelServer.start(), not to the HTTP server inside it.
    @contextlib.contextmanager
    def capture_signals(self):
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's startup, with our listener on ``listen_socket`` in place of the loop's (listener.py says why)."""
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(uvicorn.server.STARTUP_FAILURE)
        config = self.config
        state = self.lifespan.state
        self.servers = [Listener(self.listen_socket, lambda: config.http_protocol_class(
            config=config, server_state=self.server_state, app_state=state))]
        self.started = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for listener in self.servers:
            listener.close()  # takes in what the kernel has queued (listener.py)
            await listener.wait_closed()  # so the drain below reaches those connections too
        await super().shutdown(sockets)


def bind_socket(host: str, port: int, what: str, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    """A bound TCP socket, listening unless ``listen`` is false (a port reserved for worker processes)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the proto says TCP;
    # without it a response written in two parts waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:  # worker processes each listen on the same port; the kernel spreads connections
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(f"Cannot listen for {what} on {host}:{port}: {exc.strerror or exc}") from None
    if listen:
        sock.listen(2048)
        sock.setblocking(False)
    return sock


def _loop_budget_ms(model: Model, settings: Any, default: float) -> float:
    """The model's own loop budget (0 is a value here: always a thread), else the server's."""
    s = settings or getattr(model, "settings", None)
    value = getattr(s, "loop_budget_ms", None) if s is not None else getattr(model, "loop_budget_ms", None)
    return default if value is None else float(value)


class ModelServer:
    def __init__(
        self,
        http_port: int | None = None,
        grpc_port: int | None = None,
        workers: int | None = None,
        max_threads: int | None = None,
        enable_grpc: bool | None = None,
        enable_docs_url: bool | None = None,
        registered_models: ModelRepository | None = None,
        settings: ServerSettings | None = None,
        # KServe's other constructor arguments (kserve.ModelServer 0.16).
        max_asyncio_workers: int | None = None,
        enable_latency_logging: bool | None = None,
        access_log_format: str | None = None,
        predictor_config: PredictorConfig | None = None,
        # An OpenTelemetry TracerProvider (turns tracing on; e.g. the SDK's in-memory exporter in tests).
        tracer_provider: Any = None,
        **overrides: Any,
    ):
        s = settings or ServerSettings()
        explicit = {
            "http_port": http_port, "grpc_port": grpc_port, "workers": workers, "inference_threads": max_threads,
            "enable_grpc": enable_grpc, "enable_docs": enable_docs_url, "max_asyncio_workers": max_asyncio_workers,
            "enable_latency_logging": enable_latency_logging, "access_log_format": access_log_format, **overrides,
        }
        if predictor_config is not None:
            explicit.update({k: v for k, v in vars(predictor_config).items() if hasattr(s, k)})
        # What the caller said in code; it wins over KServe flags and env read by start() (as in KServe).
        self._explicit = {k: v for k, v in explicit.items() if v is not None}
        for key, value in self._explicit.items():
            if not hasattr(s, key):
                raise TypeError(f"ModelServer got an unknown setting {key!r}")
            setattr(s, key, value)
        validate_server_settings(s)
        # Settings handed in whole (the CLI) are final; otherwise start() reads argv and MODELPORT_* env.
        self._settings_given = settings is not None
        self.repository = registered_models or ModelRepository(s.model_repository)
        self.repository._runner_factory = self._make_runner
        self.repository.prepare_model, self.repository.build_runner = self._prepare_model, self._build_runner
        self.repository.release_runner = self._release_runner
        self._registered_models = registered_models
        self._tracer_provider = tracer_provider
        self._build(s)
        self.http_port: int | None = None
        self.grpc_port: int | None = None
        self._http: _Uvicorn | None = None
        self._http_task: asyncio.Task | None = None
        self._grpc: Any = None
        self._stopping: asyncio.Task | None = None
        self._guard: ConnectionGuard | None = None
        # Set in a front-end worker process (see workers.py).
        self._in_worker = False
        self._on_started: Any = None
        self._worker_conn: Any = None  # the pipe to the supervisor
        self._load_first = False  # a replacement worker: load, then listen
        self._siblings_started: list = []  # the sibling workers' "started" events (see DataPlane.ready)

    def _build(self, s: ServerSettings) -> None:
        """The parts made from the settings (again when start() reads flags and env): see compose.py."""
        build(self, s)

    def _prepare_model(self, model: Model, settings: ModelSettings | None) -> None:
        """What a registered model needs before it loads: the controls are checked before a request
        reaches it (and a bad one fails the model), its custom routes answer from the start."""
        self.controls.prepare(model, settings)  # its cache, contract and rate limit (bad ones fail the model)
        self.custom_routes.add(model)

    def _release_runner(self, runner: ModelRunner) -> None:
        """A runner dropped with its model instance (an eviction): its payload logger, closed by the
        runner's stop, leaves the list closed at shutdown. (Controls are keyed weakly by the instance.)"""
        payload_log = getattr(runner, "payload_log", None)
        if payload_log is not None and payload_log in self.observability._payload_loggers:
            self.observability._payload_loggers.remove(payload_log)

    def _make_runner(self, model: Model, settings: ModelSettings | None) -> ModelRunner:
        self._prepare_model(model, settings)
        return self._build_runner(model, settings)

    def _build_runner(self, model: Model, settings: ModelSettings | None) -> ModelRunner:
        s = self.settings
        # Transformer mode; KServe-style scripts set self.predictor_host (and self.protocol) in __init__.
        if s.predictor_host or model.predictor_config is not None or getattr(model, "predictor_host", None):
            from .transformer import attach_predictor

            attach_predictor(model, s)
        version = settings.version if settings is not None else getattr(model, "version", None)
        recorder, observe, observe_batch = self.observability.model_observers(
            model.name, version, self.metrics, s.enable_latency_logging)
        pool = None
        workers = model_option(model, settings, "parallel_workers", s.parallel_workers)
        if workers:
            from ..execution.process_pool import InferencePool, pool_spec

            pool = InferencePool(model.name, workers, pool_spec(model, settings or model.settings),
                                 retry_on_crash=bool(model_option(model, settings, "idempotent", False)))
        runner = ModelRunner(
            model,
            self.threads,
            observe,
            max_batch_size=model_option(model, settings, "max_batch_size", s.max_batch_size),
            max_batch_time=model_option(model, settings, "max_batch_time", s.max_batch_time),
            observe_batch=observe_batch,
            pool=pool,
            pool_stages=tuple(model_option(model, settings, "worker_stages", ["predict"])),
            loop_budget=_loop_budget_ms(model, settings, s.loop_budget_ms) / 1000,
        )
        runner.stats = recorder
        runner.payload_log = self.observability.payload_logger(model.name, version, model_option(model, settings, "payload_log", {}))
        return runner

    def register_model(self, model: Model) -> None:
        if not model.name:
            raise ValueError("Model must have a name")
        self.repository.update(model)

    # -- blocking entry point -------------------------------------------------------------------
    def start(self, models: Iterable[Model] = ()) -> None:
        """Serve until SIGTERM or SIGINT, then drain and return.

        Started from a script (``python model.py --http_port 8085``), this reads KServe's flags from
        ``sys.argv`` and ``MODELPORT_*`` from the environment, and sets up logging, as KServe's does.
        ``models=None`` or a non-model item raises RuntimeError before anything listens, as in KServe.
        """
        from ..compat.kserve.flags import check_models

        check_models(models)
        if not self._settings_given and not self._in_worker:
            self._configure_from_argv()
        if self.settings.workers > 1 and not self._in_worker:
            from .workers import serve_workers

            return serve_workers(self, models)
        try:
            import uvloop

            runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        except ImportError:
            runner = asyncio.Runner()
        with runner:
            runner.run(self._serve_until_signalled(models))

    def _configure_from_argv(self) -> None:
        from ..compat.kserve.flags import settings_from_argv

        settings, flags = settings_from_argv(sys.argv[1:], self._explicit)
        self._build(settings)
        for entry in self.repository.entries():  # models registered before start(): runners on the new settings
            if entry.model is not None:
                entry.runner = self._make_runner(entry.model, entry.settings)
        if getattr(flags, "configure_logging", True):
            from ..cli import configure_logging

            configure_logging(settings.log_level, settings.log_format, getattr(flags, "log_config_file", None))

    async def _serve_until_signalled(self, models: Iterable[Model] | None) -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        starting: asyncio.Future | None = None

        def on_signal(sig: signal.Signals) -> None:
            logger.info("Received %s; draining", sig.name)
            if self._stopping is None:
                self._stopping = asyncio.ensure_future(self.stop())
                self._stopping.add_done_callback(lambda _: done.set())
                if starting is not None and not starting.done():
                    starting.cancel()  # models still loading: stop loading them, the drain goes on

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        if self.settings.max_asyncio_workers:  # KServe's --max_asyncio_workers: the loop's default executor
            loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(self.settings.max_asyncio_workers))
        try:
            starting = asyncio.ensure_future(self.start_async(models))
            try:
                await starting
            except asyncio.CancelledError:
                if self._stopping is None:
                    raise
            if self._on_started is not None and not starting.cancelled():
                self._on_started()
            await done.wait()
            if self._stopping is not None:
                await self._stopping
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    # -- async lifecycle -----------------------------------------------------------------------
    async def start_async(self, models: Iterable[Model] | None = None) -> None:
        """Bind the listeners, start serving, and load the models; returns once they are loaded.

        The listeners come up before the models load, so liveness answers (and readiness says
        "not yet") while a slow model loads; configuration errors fail before anything listens.
        A replacement worker process loads first and then listens, while its siblings serve.
        """
        s = self.settings
        malloc_tuning.tune(s.malloc_cache_size)  # large tensors: no page faults per request (malloc_tuning.py)
        http_sock = None
        self.dataplane.loading = True
        self.dataplane.siblings_pending = list(self._siblings_started)
        try:
            if not self._load_first:
                http_sock = bind_socket(s.host, s.http_port, "HTTP", reuse_port=self._in_worker)
                self.http_port = http_sock.getsockname()[1]
            from_folder = bool(self.repository.models_dir or self.repository.default_model)
            # load_models_at_startup false (ModelMesh): start empty; models come through the repository API.
            folder_models = self.repository.build_folder() if from_folder and s.load_models_at_startup else []
            models = list(models or [])
            # Known before anything listens: an early request is "not ready" (503, retried), never 404.
            self.repository.expect([(m, None) for m in models] + folder_models)
            compose.apply_policies(self, [(m, getattr(m, "settings", None)) for m in models] + folder_models)
            if self._worker_conn is not None:  # repository actions apply in every worker (worker_sync.py)
                from .worker_sync import Link

                self.dataplane.coordinator = Link(self._worker_conn, self.dataplane)
                self.dataplane.coordinator.start()
            if http_sock is not None:
                await self._listen(http_sock)
            await self._load_models(models, folder_models)
            if self.dataplane.coordinator is not None:
                await self.dataplane.coordinator.join()
            self._freeze_heap()
            if http_sock is None:
                http_sock = bind_socket(s.host, s.http_port, "HTTP", reuse_port=self._in_worker)
                self.http_port = http_sock.getsockname()[1]
                await self._listen(http_sock)
            compose.start_polling(self)
        except BaseException:
            if http_sock is not None:
                http_sock.close()
            if self._stopping is None:  # else a signal's stop() drains already
                await self.stop(grace_period=0)
            raise
        finally:
            self.dataplane.loading = False

    def _freeze_heap(self) -> None:
        """Once the models have loaded: what exists stays out of the collector's full passes
        (serving/heap.py); with residency only this once; not with a polled folder, nor with gc_freeze off."""
        s = self.settings
        if s.gc_freeze and s.model_control_mode != "poll" and self.dataplane.freezer is None:
            residency = self.repository.residency
            self.dataplane.freezer = Freezer(refreeze=residency is None)
            self.dataplane.freezer.settle()
            if residency is not None:
                residency.frozen(self.dataplane.freezer)

    async def _listen(self, http_sock: socket.socket) -> None:
        s = self.settings
        if s.enable_grpc:
            from ..transports.grpc import start_grpc_server

            self._grpc = await start_grpc_server(
                self.dataplane, s.host, s.grpc_port, s.grpc_max_message_size, reuse_port=self._in_worker,
                checks=grpc_checks(self), edge=self.observability.edge,
            )
            self.grpc_port = self._grpc.port
        # Header limits, timeouts, the connection cap and the lossless drain (protocol.py).
        self._guard = ConnectionGuard(Limits(s.max_header_size, s.max_header_count, s.header_timeout,
                                   s.keep_alive_timeout, s.max_connections, s.body_timeout))
        self._guard.start()
        config = uvicorn.Config(
            # access_log=False: the access log is ours (observability.edge); uvicorn's would be a second one.
            self.app, http=self._guard.protocol_class(), lifespan="off", access_log=False, log_config=None,
            timeout_graceful_shutdown=s.grace_period, timeout_keep_alive=s.keep_alive_timeout, server_header=False,
            proxy_headers=False,  # nothing here reads the client address; skip the middleware
        )
        self._http = _Uvicorn(config)
        self._http.listen_socket = http_sock
        self._http_task = asyncio.ensure_future(self._http.serve(sockets=[http_sock]))
        while not self._http.started:
            if self._http_task.done():
                self._http_task.result()
                raise StartupError("HTTP server stopped while starting")
            await asyncio.sleep(0.005)
        logger.info("Listening for HTTP on http://%s:%d", s.host, self.http_port)
        if self.grpc_port is not None:
            logger.info("Listening for gRPC on %s:%d", s.host, self.grpc_port)

    async def _load_models(self, models: Iterable[Model] | None, folder_models: list) -> None:
        jobs = [self.repository.load_model(m) for m in (models or [])]
        jobs += [self.repository.load_model(e.model, e.settings) for e in self.repository.entries() if e.model is not None and e.runner is not None and not e.model.ready]
        jobs += [self.repository.load_model(model, spec) for model, spec in folder_models]
        await asyncio.gather(*jobs)
        for e in self.repository.entries():
            if e.state.value == "FAILED":
                logger.error("Model %s is not ready: %s", e.name, e.reason)
        if not self.repository.entries() and self.repository.models_dir and self.settings.load_models_at_startup:
            if self.repository.problems:  # files that look like models, none usable: not ready, and why
                problems = "; ".join(self.repository.problems)
                self.dataplane.not_ready_reason = f"{self.repository.models_dir} yields no model: {problems}"
                logger.warning("Not ready: %s", self.dataplane.not_ready_reason)
            else:  # an empty folder: ready, as Triton and MLServer are, serving nothing until a load
                logger.warning("%s holds no models; load them through the repository API", self.repository.models_dir)

    async def stop(self, grace_period: float | None = None) -> None:
        """Drain and stop; safe to call more than once.

        Readiness turns false and every HTTP response closes its connection; after ``drain_delay``
        (only when no grace period is forced) the listeners close, requests already received are
        served, and in-flight work gets the grace period to finish.
        """
        grace = self.settings.grace_period if grace_period is None else grace_period
        self.dataplane.draining = True
        if self.dataplane.freezer is not None:  # what the models held is collectable again as they unload
            self.dataplane.freezer.thaw()
            self.dataplane.freezer = None
        await compose.stop(self)
        if self._guard is not None:
            self._guard.drain()
        if grace_period is None and self.settings.drain_delay > 0 and (self._http or self._grpc):
            if self._grpc is not None:
                await self._grpc.not_serving()
            logger.info("Draining: serving for %g more seconds while not ready", self.settings.drain_delay)
            await asyncio.sleep(self.settings.drain_delay)
        tasks = []
        if self._http is not None:
            self._http.config.timeout_graceful_shutdown = grace
            self._http.should_exit = True
            tasks.append(self._http_task)
        if self._grpc is not None:
            tasks.append(asyncio.ensure_future(self._grpc.stop(grace)))
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._http = None
        self._grpc = None
        if self._guard is not None:
            await self._guard.stop()
            self._guard = None
        if self.dataplane.coordinator is not None:
            self.dataplane.coordinator.close()
        await self.rest_app.offload.close()
        if self.console is not None:  # its chart sampler
            self.console.close()
        await self.repository.unload_all()
        if self.dataplane.shared_memory is not None:
            self.dataplane.shared_memory.close()  # unregister every shared-memory region
        await self.observability.close()
        self.threads.shutdown()
        logger.info("Server stopped")
