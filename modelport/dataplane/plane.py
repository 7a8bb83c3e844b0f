"""Every protocol operation, once. REST and gRPC are thin doors into this class.

Protocol rules live here, not in the transports: input checks against declared metadata, requested
outputs, echoing the request id, turning whatever ``predict`` returned into the right response type.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random
import time
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import DeadlineExceeded, InvalidInput, ModelNotFound, ModelportError, Overloaded, Unimplemented, public_reason
from ..observability.metrics import Metrics, timing_tally
from ..observability import context as request_context
from ..predict_io import get_predict_response
from ..repository.entries import ModelEntry, ModelRepository, ModelState
from ..routing.router import VERSION_HEADER
from ..streaming import ResponseStream, is_stream, stream_requested
from ..types import InferOutput, InferRequest, InferResponse

# What hooks return that is one answer, never a stream (skips is_stream's checks on the hot path).
_ANSWERS = frozenset((InferResponse, dict, list, np.ndarray, str, bytes))
# Error codes that are the client's doing: they do not count against a model version.
_CLIENT_CODES = {"invalid_input", "not_found", "payload_too_large", "resource_exhausted", "deadline_exceeded"}

EXTENSIONS = ["binary_tensor_data", "model_repository", "metrics", "statistics"]
# Routing admin actions: applied in every front-end worker and replayed to a replacement, as load/unload.
ROUTING_ACTIONS = ("traffic", "promote", "rollback")
# Seconds a request waited for its model to load on demand (residency.py); absent when it was resident.
LOAD_HEADER = "x-modelport-load-seconds"


class DataPlane:
    def __init__(
        self,
        repository: ModelRepository,
        metrics: Metrics | None = None,
        server_name: str = "modelport",
        request_timeout: float = 0.0,
        max_queue_size: int = 0,
        stats: Any = None,
    ):
        self.repository = repository
        self.metrics = metrics
        self.server_name = server_name
        if metrics is not None:
            metrics.in_flight_source = self.in_flight
        # Server-wide defaults: a deadline for every request, and a cap on requests per model.
        self.request_timeout = request_timeout
        self.max_queue_size = max_queue_size
        # Set when the server starts draining: readiness goes false. Requests that still reach the data
        # plane are served (the transports stop taking new ones; see server.py).
        self.draining = False
        # Set while the server's models load at start-up: live, but not ready yet.
        self.loading = False
        # In a front-end worker process: its siblings' "started" events (workers.py). Not ready until
        # every sibling has started: the kernel hands connections to every worker listening on the
        # port, so "ready" from one must mean none still answers 503 "loading".
        self.siblings_pending: list = []
        # Set when the model folder yielded no model at start-up: not ready until one is loaded.
        self.not_ready_reason = ""
        self._tallies: dict[tuple[str, str, Any], Any] = {}  # _latency's, by (model, protocol, recorder)
        # Triton-style statistics and the health view (observability.stats.Statistics), or None.
        self.stats = stats
        # With front-end worker processes: applies repository actions in every worker (worker_sync.Link).
        self.coordinator: Any = None
        # Routing (traffic policies, shadows, per-version metrics): set by the composition root.
        self.router: Any = None
        # Triton's system shared-memory regions (shm.SharedMemory): set by the composition root.
        self.shared_memory: Any = None
        # The heap freezer (serving/heap.Freezer) while the server keeps its heap frozen, else None.
        self.freezer: Any = None

    # -- health and metadata ------------------------------------------------------------------
    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        if self.not_ready_reason and not self.repository.entries():
            return False
        return not self.draining and not self.loading and self._siblings_started() and self.repository.all_ready()

    def _siblings_started(self) -> bool:
        pending = self.siblings_pending
        if pending:  # checked until all have started; then never again
            self.siblings_pending = pending = [e for e in pending if not e.is_set()]
        return not pending

    def not_ready_because(self) -> str:
        """Why the server is not ready ("" when it is, or when there is no single reason to give)."""
        if self.not_ready_reason and not self.repository.entries():
            return self.not_ready_reason
        if self.draining or self.loading:
            return "shutting down" if self.draining else "loading models"
        return "other worker processes still starting" if not self._siblings_started() else ""

    def readiness(self) -> dict[str, Any]:
        """The readiness answer: ``{"ready": true}``, or why not, naming each model that is not ready
        (``{"ready": false, "reason": ..., "models": {"iris": "FAILED: load failed: ..."}}``). Reasons
        are the index's, with paths relative to the models folder."""
        if self.ready():
            return {"ready": True}
        models = {}
        for e in self.repository.entries():
            if e.state is not ModelState.UNAVAILABLE and not (e.state is ModelState.READY and e.model.ready):
                state = e.state.value if e.state is not ModelState.READY else "NOT READY"
                models[e.name if e.version is None else f"{e.name}/{e.version}"] = f"{state}: {e.reason}" if e.reason else state
        reason = self.not_ready_because()
        if not reason and models:
            names = sorted(models)
            reason = f"{len(names)} model(s) not ready: " + ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        doc: dict[str, Any] = {"ready": False, "reason": public_reason(reason, self.repository.models_dir) if reason else reason}
        if models:
            doc["models"] = models
        return doc

    def server_metadata(self) -> dict[str, Any]:
        shared = self.shared_memory is not None and self.shared_memory.enabled
        return {"name": self.server_name, "version": __version__, "extensions": [*EXTENSIONS, "system_shared_memory"] if shared else EXTENSIONS}

    def model_ready(self, name: str, version: str | None = None) -> bool:
        """Whether a model serves now. Unknown: ModelNotFound; unloaded but known: False (as Triton answers)."""
        entry = self.repository._find(name, version)
        if entry is None:
            raise ModelNotFound(name, version)
        if entry.state is ModelState.UNAVAILABLE:
            return False
        if entry.on_demand and entry.state is not ModelState.READY:  # served on its first request
            return not self.draining and self.repository.residency.loadable(entry)
        model = entry.model
        # A transformer with predictor_health_check is ready only while its predictor is.
        return not self.draining and entry.state is ModelState.READY and model.ready and model.predictor_healthy()

    def check_model(self, name: str, version: str | None = None) -> None:
        """Not found / not ready, answered before a request body is decoded (a body costs work)."""
        self.repository.resolve(name, version)

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        entry = self.repository.resolve(name, version, require_ready=False)
        if entry.model is None:
            return {"name": name, "versions": [version] if version else [], "platform": "", "inputs": [], "outputs": []}
        return entry.model.metadata()

    def model_names(self) -> list[str]:
        return sorted(self.repository.get_models())

    # -- inference -----------------------------------------------------------------------------
    async def infer(self, request: InferRequest, headers: dict | None = None) -> tuple[InferResponse, dict]:
        """A V2 inference. Returns the response and the headers the model asked to send back."""
        version, policy = request.model_version, None
        if version is None and self.router is not None:
            version, policy = self.router.choose(request.model_name, headers)
        entry, started, cold = await self._enter(request.model_name, version, "v2", headers, request.parameters)
        ok = False
        try:
            model = entry.model
            payload_log = entry.runner.payload_log
            if payload_log is not None:
                request_id = _request_id(request.id)
                payload_log.request(request_id, request)
            _check_request(request, model)
            timeout = self._deadline(headers, request.parameters)
            pending = entry.runner.infer(request, headers)
            result, response_headers = await (pending if timeout is None else _with_deadline(pending, timeout))
            if type(result) is not InferResponse and is_stream(result):
                await ResponseStream(result, entry.runner.in_thread).aclose()
                raise InvalidInput(
                    f"Model {model.name} streams its responses; use /infer_stream, /generate_stream or gRPC ModelStreamInfer"
                )
            response = self._finish_v2(result, request, entry)
            if payload_log is not None:
                payload_log.response(request_id, response)
            if policy is not None:
                response_headers = self._routed(entry, policy, response_headers, response, request, headers)
            if cold:
                response_headers = {**(response_headers or {}), LOAD_HEADER: f"{cold:.6f}"}
            ok = True
            return response, response_headers
        except BaseException as exc:
            self._failed(entry, "v2", exc, policy)
            raise
        finally:
            self._leave(entry, "v2", started, ok)

    def _finish_v2(self, result: Any, request: InferRequest, entry: ModelEntry) -> InferResponse:
        response = _as_response(result, request, entry.model.name)
        response.model_version = entry.version
        if request.id is not None:
            response.id = request.id
        elif response.id is None:  # clients read it; KServe and MLServer always send one
            response.id = response_id()
        if request.request_outputs:
            response.outputs = _select_outputs(response, request)
        return response

    # -- streaming (modelport/streaming.py) ------------------------------------------------------
    async def infer_stream(self, request: InferRequest, headers: dict | None = None) -> ResponseStream:
        """A V2 inference whose answer may be many responses. A model that does not stream gives a
        stream of one. The request counts as in flight until the stream is closed; the deadline
        covers opening the stream (the hooks returning), not draining it."""
        version, policy = request.model_version, None
        if version is None and self.router is not None:  # a traffic policy picks the version, as for infer
            version, policy = self.router.choose(request.model_name, headers)
        entry, started, cold = await self._enter(request.model_name, version, "v2", headers, request.parameters)
        try:
            model = entry.model
            _check_request(request, model)
            timeout = self._deadline(headers, request.parameters)
            asked = stream_requested.set(True)
            try:
                result, response_headers = await _with_deadline(entry.runner.infer(request, headers), timeout)
            finally:
                stream_requested.reset(asked)
        except BaseException as exc:
            self._failed(entry, "v2", exc, policy)
            self._leave(entry, "v2", started)
            raise
        if policy is not None:  # say which version answers (no canary outcome or shadow for streams)
            response_headers = {**(response_headers or {}), VERSION_HEADER: entry.version or ""}
        return ResponseStream(
            result, entry.runner.in_thread, lambda item: self._finish_v2(item, request, entry),
            self._closer(entry, "v2", started), response_headers,
        )

    async def call(self, name: str, method: str, *args: Any, headers: dict | None = None, protocol: str = "openai") -> Any:
        """Call a model's own method (the OpenAI routes: ``create_completion`` and friends) with the same
        admission, deadline, metrics and stream handling as inference. ``def`` methods run in the hook
        threads. A streamed answer comes back as a :class:`ResponseStream` that releases the request
        when it closes."""
        entry, started, cold = await self._enter(name, None, protocol, headers)
        release = True
        try:
            fn = getattr(entry.model, method)
            if inspect.iscoroutinefunction(fn):
                pending = fn(*args)
            else:
                pending = entry.runner.in_thread(fn, *args)
            result = await _with_deadline(_settle(pending), self._deadline(headers, None))
            if is_stream(result):
                release = False
                return ResponseStream(result, entry.runner.in_thread, on_close=self._closer(entry, protocol, started))
            return result
        except BaseException as exc:
            self._failed(entry, protocol, exc)
            raise
        finally:
            if release:
                self._leave(entry, protocol, started)

    def _closer(self, entry: ModelEntry, protocol: str, started: float) -> Any:
        def on_close(error: BaseException | None) -> None:
            if error is not None:
                self._failed(entry, protocol, error)
            self._leave(entry, protocol, started)

        return on_close

    async def infer_v1(self, name: str, payload: Any, headers: dict | None = None, verb: str = "predict") -> tuple[Any, dict]:
        """A KServe V1 ``:predict`` or ``:explain``; the model sees the JSON (or bytes) the client sent."""
        version, policy = None, None
        if self.router is not None:
            version, policy = self.router.choose(name, headers)
        entry, started, cold = await self._enter(name, version, "v1", headers)
        ok = False
        try:
            call = entry.runner.explain if verb == "explain" else entry.runner.infer
            payload_log = entry.runner.payload_log
            if payload_log is not None:
                request_id = _request_id(None)
                payload_log.request(request_id, payload)
            timeout = self._deadline(headers, None)
            pending = call(payload, headers)
            result, response_headers = await (pending if timeout is None else _with_deadline(pending, timeout))
            if type(result) not in _ANSWERS and is_stream(result):  # the REST door sends it as server-sent events
                stream = ResponseStream(result, entry.runner.in_thread, _v1_item, self._closer(entry, "v1", started), response_headers)
                entry = None  # the stream releases the request when it closes
                return stream, response_headers
            if isinstance(result, InferResponse):
                result = {"predictions": [o.as_numpy().tolist() for o in result.outputs]}
            elif not isinstance(result, dict):
                result = get_predict_response(payload, result, name)
            if payload_log is not None:
                payload_log.response(request_id, result)
            if policy is not None:
                response_headers = self._routed(entry, policy, response_headers, result, (payload, verb), headers)
            if cold:
                response_headers = {**(response_headers or {}), LOAD_HEADER: f"{cold:.6f}"}
            ok = True
            return result, response_headers
        except BaseException as exc:
            if entry is not None:
                self._failed(entry, "v1", exc, policy)
            raise
        finally:
            if entry is not None:
                self._leave(entry, "v1", started, ok)

    async def _enter(self, name: str, version: str | None, protocol: str, headers: dict | None = None,
                     parameters: dict | None = None) -> tuple[ModelEntry, float, float]:
        entry = self.repository.resolve(name, version)
        cold = 0.0
        if entry.state is not ModelState.READY:  # loaded on demand (residency.py): wait for it to be resident
            waited = time.perf_counter()
            await self.repository.residency.admit(entry, self._deadline(headers, parameters))
            cold = time.perf_counter() - waited  # the answer says so (LOAD_HEADER)
        limit = entry.max_queue_size or self.max_queue_size
        if limit and entry.in_flight >= limit:
            raise Overloaded(f"Model {entry.name} has {entry.in_flight} requests waiting (max_queue_size {limit}); retry later")
        entry.enter()
        started = time.perf_counter()
        info = request_context.current.get()
        if info is not None:  # for the logs and the trace of this request
            info.model, info.version, info.entered = entry.name, entry.version, started
        return entry, started, cold

    def _leave(self, entry: ModelEntry, protocol: str, started: float, ok: bool = True) -> None:
        entry.leave()
        now = time.perf_counter()
        seconds = now - started
        recorder = entry.runner.stats
        if ok:
            self._latency(entry.name, protocol, recorder)(seconds)
            if recorder is not None:
                recorder.served(now, seconds, True)
        else:
            self._latency(entry.name, protocol)(seconds)
            if recorder is not None:
                recorder.request(seconds, False)
        router = self.router
        if self.metrics is not None and entry.version is not None and router is not None and router.metrics is not None:
            router.metrics.version_latency.labels(entry.name, entry.version).observe(seconds)
        info = request_context.current.get()
        if info is not None:
            info.left = now

    def _failed(self, entry: ModelEntry, protocol: str, exc: BaseException, policy: Any = None) -> None:
        if self.metrics is not None:
            code = exc.code.value if isinstance(exc, ModelportError) else "internal"
            self.metrics.failures.labels(entry.name, protocol, code).inc()
        if entry.version is not None and self.router is not None:
            # A client's bad input is not the version's fault; only server-side failures count.
            server_side = not isinstance(exc, ModelportError) or exc.code.value not in _CLIENT_CODES
            if self.router.metrics is not None and server_side:
                self.router.metrics.version_requests.labels(entry.name, entry.version, "error").inc()
            if policy is not None and server_side:
                self.router.outcome(entry.name, entry.version, policy, False)

    def _routed(self, entry: ModelEntry, policy: Any, response_headers: dict, answer: Any, request: Any, headers: dict | None) -> dict:
        """A request a traffic policy routed: say which version answered, feed the canary window,
        and mirror it to the shadow version if the policy has one (fire and forget)."""
        router = self.router
        if router.metrics is not None:
            router.metrics.version_requests.labels(entry.name, entry.version, "ok").inc()
        router.outcome(entry.name, entry.version, policy, True)
        if policy.shadow is not None:
            router.mirror(entry.name, policy, answer, self._shadow_call(entry.name, request, headers))
        out = dict(response_headers) if response_headers else {}
        out[VERSION_HEADER] = entry.version or ""
        return out

    def _shadow_call(self, name: str, request: Any, headers: dict | None) -> Any:
        async def call(version: str) -> Any:
            if isinstance(request, InferRequest):
                copy = InferRequest(name, request.inputs, request.id, parameters=dict(request.parameters),
                                    request_outputs=request.request_outputs, model_version=version)
                return (await self.infer(copy, headers))[0]
            payload, verb = request
            entry, started, cold = await self._enter(name, version, "v1", headers)
            try:
                call = entry.runner.explain if verb == "explain" else entry.runner.infer
                result, _ = await call(payload, headers)
                return result
            finally:
                self._leave(entry, "v1", started)

        return call

    def _deadline(self, headers: dict | None, parameters: dict | None) -> float | None:
        """Seconds this request may take: the server default, lowered by the request's own ask."""
        if self.request_timeout <= 0 and not parameters and (not headers or "x-request-timeout" not in headers):
            return None  # the common case: no deadline at all
        candidates = [self.request_timeout] if self.request_timeout > 0 else []
        if headers:
            raw = headers.get("x-request-timeout")
            if raw is not None:
                candidates.append(_positive(raw, "x-request-timeout header (seconds)"))
        if parameters and "timeout" in parameters:
            candidates.append(_positive(parameters["timeout"], "\"timeout\" parameter (microseconds)") / 1e6)
        return min(candidates) if candidates else None

    def _latency(self, model: str, protocol: str, recorder: Any = None) -> Any:
        """``tally(seconds)`` into the request-latency histogram of (model, protocol), made once; with a
        statistics ``recorder``, its "success" pair counted in the same tally (metrics.timing_tally)."""
        key = (model, protocol, recorder)
        tally = self._tallies.get(key)
        if tally is None:
            child = self.metrics.request_latency.labels(model, protocol) if self.metrics is not None else None
            pair = recorder.success_series() if recorder is not None else (None, None)
            tally = self._tallies[key] = timing_tally(child, *pair)
        return tally

    def in_flight(self) -> dict[str, int]:
        """Requests being served per model (for the metrics gauge)."""
        counts: dict[str, int] = {}
        for entry in self.repository.entries():
            if entry.runner is None and not entry.in_flight:  # registered, not loaded (residency.py): no series
                continue
            counts[entry.name] = counts.get(entry.name, 0) + entry.in_flight
        return counts

    # -- statistics extension and health ------------------------------------------------------
    def model_statistics(self, name: str | None = None, version: str | None = None) -> list[dict[str, Any]]:
        """Triton's statistics for one model (version), or for every loaded model when ``name`` is empty."""
        if self.stats is None:
            raise Unimplemented("Statistics are turned off (enable_statistics is false)")
        if name:
            entry = self.repository.resolve(name, version, require_ready=False)
            keys = [(entry.name, entry.version)]
        else:
            keys = [(e.name, e.version) for e in self.repository.entries() if e.state is ModelState.READY]
            keys.sort(key=lambda k: (k[0], k[1] or ""))
        out = self.stats.model_stats(keys)
        if self.repository.residency is not None:  # Triton's memory_usage: what the model held at its last load
            for item in out:
                entry = self.repository._find(item["name"], item["version"] or None)
                if entry is not None and entry.on_demand and entry.state is ModelState.READY:
                    item["memory_usage"] = [{"type": "CPU", "id": 0, "byte_size": entry.memory_bytes}]
        return out

    def model_health(self, name: str, version: str | None = None) -> dict[str, Any]:
        """Error rate, latency percentiles and a status (healthy, degraded, failed) over a recent window."""
        if self.stats is None:
            raise Unimplemented("Statistics are turned off (enable_statistics is false)")
        entry = self.repository.resolve(name, version, require_ready=False)
        ready = entry.state is ModelState.READY and entry.model is not None and entry.model.ready
        return self.stats.health(entry.name, entry.version, ready)

    # -- repository extension -----------------------------------------------------------------
    def repository_index(self, ready_only: bool = False) -> list[dict[str, Any]]:
        index = self.repository.index()
        if self.router is not None:
            for item in index:
                policy = self.router.describe(item["name"])
                if policy is not None:
                    item["traffic"] = policy
        return [m for m in index if m["state"] == "READY"] if ready_only else index

    async def load(self, name: str) -> None:
        _check_name(name)
        if self.coordinator is not None:
            return await self.coordinator.everywhere("load", name)
        await self.apply_in_this_worker("load", name)

    async def unload(self, name: str, version: str | None = None) -> None:
        _check_name(name)
        if self.coordinator is not None:
            return await self.coordinator.everywhere("unload", name, version)
        await self.apply_in_this_worker("unload", name, version)

    def model_ready_in_this_worker(self, name: str) -> bool:
        entry = self.repository._find(name, None)
        return entry is not None and entry.state is ModelState.READY

    async def apply_in_this_worker(self, action: str, name: str, arg: Any = None) -> Any:
        """A repository or routing action in this process only. ``arg``: for an unload, one version (or
        None: all); for ``traffic`` the policy, for ``promote`` the version. Returns the action's answer."""
        _check_name(name)
        if action in ROUTING_ACTIONS:
            router = self._routing()
            if action == "traffic":
                return router.set_policy(name, arg)
            return router.promote(name, arg) if action == "promote" else router.rollback(name)
        # The set of models changes: the frozen heap (serving/heap.py) is thawed meanwhile.
        with self.freezer.changing() if self.freezer is not None else contextlib.nullcontext():
            if action == "unload":
                await self.repository.unload(name, arg)
                if self.router is not None and arg is None:
                    self.router.clear(name)
                return None
            ready = await self.repository.load(name)
        if not ready:
            entry = self.repository._find(name, None)
            reason = entry.reason if entry else "unknown"
            raise ModelportError(f"Model {name} failed to load: {reason}")
        return None

    # -- traffic policies (routing); admin calls that reach every front-end worker, as load and unload ---
    async def traffic(self, name: str, policy: Any = None) -> dict[str, Any]:
        """Read the traffic policy of ``name`` (``policy`` None), or replace it."""
        if policy is None:
            return self._routing().policy(name)
        return await self._everywhere("traffic", name, policy)

    async def promote(self, name: str, version: Any) -> dict[str, Any]:
        return await self._everywhere("promote", name, version)

    async def rollback(self, name: str) -> dict[str, Any]:
        return await self._everywhere("rollback", name, None)

    async def _everywhere(self, action: str, name: str, arg: Any) -> Any:
        if self.coordinator is not None:
            return await self.coordinator.everywhere(action, name, arg)
        return await self.apply_in_this_worker(action, name, arg)

    def _routing(self) -> Any:
        if self.router is None:
            raise Unimplemented("Traffic policies are not available in this deployment")
        return self.router


def _check_name(name: str) -> None:
    """A model name is a name, never a path (the repository API must not reach outside its folder)."""
    if not name or "/" in name or "\\" in name or "\x00" in name or name.startswith(".."):
        raise InvalidInput(f"Invalid model name {name!r}: a model name cannot be empty or contain '/', '\\\\' or '..'")


async def _settle(pending: Any) -> Any:
    result = await pending
    while inspect.isawaitable(result):  # a sync method that returned a coroutine
        result = await result
    return result


# uuid4's fixed bits (RFC 4122): version 4 in bits 76-79, variant 10 in bits 62-63.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def response_id() -> str:
    """A uuid4 (as KServe and MLServer make), from Python's generator: no system call per response, and
    formatted directly (uuid.UUID's constructor and str() cost about 5 µs of the hot path)."""
    h = "%032x" % (random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _request_id(fallback: str | None) -> str:
    """The id events about this request carry: the transport's request id, else the body's, else a new one."""
    info = request_context.current.get()
    if info is not None:
        return info.request_id
    return fallback or request_context.new_request_id()


def _positive(raw: Any, what: str) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = -1.0
    if isinstance(raw, bool) or not value > 0:
        raise InvalidInput(f"The {what} must be a positive number, got {raw!r}")
    return value


async def _with_deadline(call: Any, timeout: float | None) -> Any:
    if timeout is None:  # the common case: no timer at all
        return await call
    try:
        async with asyncio.timeout(timeout):
            return await call
    except TimeoutError:
        raise DeadlineExceeded(f"The request did not finish within its deadline of {timeout:g} s") from None


def _check_request(request: InferRequest, model: Any) -> None:
    """A V2 request against the model's declared inputs and outputs (when it declares them)."""
    declared = model.inputs
    if declared:
        check = getattr(model, "_modelport_input_check", None)
        if check is None or check.declared is not declared or check.count != len(declared):
            # Built once per declared list (at the first request), not per request; a model that
            # replaces or extends its list gets a new one.
            check = _InputCheck(declared)
            try:
                model._modelport_input_check = check
            except AttributeError:  # a model object that takes no new attributes: built per request
                pass
        check(request, getattr(model, "single_input_any_name", False))
    if request.request_outputs and model.outputs:
        _check_requested(request, {o["name"] for o in model.outputs})


class _InputCheck:
    """Names, datatypes and shapes against a model's declared inputs (-1 matches any size).

    Called with ``any_name`` (built-in runtimes): a lone input sent under another name is the model's one input.
    """

    __slots__ = ("declared", "count", "by_name", "required")

    def __init__(self, declared: list[dict]):
        self.declared = declared
        self.count = len(declared)
        self.by_name = {d["name"]: d for d in declared}
        self.required = [name for name, spec in self.by_name.items() if not spec.get("optional")]

    def __call__(self, request: InferRequest, any_name: bool = False) -> None:
        declared, by_name = self.declared, self.by_name
        inputs = request.inputs
        if any_name and len(declared) == 1 and len(inputs) == 1 and inputs[0].name != declared[0]["name"]:
            inputs[0]._name = declared[0]["name"]
        for tensor in inputs:
            spec = by_name.get(tensor.name)
            if spec is None:
                raise InvalidInput(f"Unknown input {tensor.name!r}; model {request.model_name} expects {', '.join(by_name)}")
            want = spec.get("datatype")
            if want and want != tensor.datatype:
                raise InvalidInput(f"Input {tensor.name!r} has datatype {tensor.datatype}, model expects {want}")
            shape = spec.get("shape")
            if shape and not _shape_matches(tensor.shape, shape):
                raise InvalidInput(f"Input {tensor.name!r} has shape {tensor.shape}, model expects {shape}")
        if self.count == 1 and inputs:  # the one declared input was sent (the loop above knows every name)
            return
        sent = {t.name for t in inputs}
        missing = [name for name in self.required if name not in sent]
        if missing:
            raise InvalidInput(f"Missing input(s) {', '.join(repr(m) for m in missing)} for model {request.model_name}")


def _check_inputs(request: InferRequest, declared: list[dict], any_name: bool = False) -> None:
    """Check a request against ``declared`` inputs (see :class:`_InputCheck`; kept for callers outside)."""
    _InputCheck(declared)(request, any_name)


def _shape_matches(actual: list[int], declared: list[int]) -> bool:
    if len(actual) != len(declared):
        return False
    for a, d in zip(actual, declared):  # a loop, not all() over a generator: per input, per request
        if d != -1 and d != a:
            return False
    return True


def _check_requested(request: InferRequest, available: set[str]) -> None:
    for out in request.request_outputs or []:
        if out.name not in available:
            raise InvalidInput(f"Unknown requested output {out.name!r}; model {request.model_name} has {', '.join(sorted(available))}")


def _select_outputs(response: InferResponse, request: InferRequest) -> list:
    by_name = {o.name: o for o in response.outputs}
    selected = []
    for out in request.request_outputs:
        tensor = by_name.get(out.name)
        if tensor is None:
            raise InvalidInput(
                f"Unknown requested output {out.name!r}; model {request.model_name} returned {', '.join(by_name) or 'nothing'}"
            )
        if out.parameters:
            tensor.parameters.update(out.parameters)
        selected.append(tensor)
    return selected


def _v1_item(item: Any) -> Any:
    """One streamed V1 item: a dict or text as the model gave it; a V2 response as predictions."""
    if isinstance(item, InferResponse):
        return {"predictions": [o.as_numpy().tolist() for o in item.outputs]}
    return item


def text_response(text: str, model_name: str, name: str = "text_output") -> InferResponse:
    """A chunk of text as a V2 response: one BYTES output of shape [1]."""
    out = InferOutput(name, [1], "BYTES")
    out.set_data_from_numpy(np.array([text.encode("utf-8")], dtype=object), binary_data=False)
    return InferResponse(None, model_name, [out])


def _as_response(result: Any, request: InferRequest, model_name: str) -> InferResponse:
    if isinstance(result, InferResponse):
        return result
    if isinstance(result, (str, bytes)):
        return text_response(result.decode("utf-8") if isinstance(result, bytes) else result, model_name)
    if isinstance(result, dict) and "outputs" in result:
        from ..wire.v2_json import response_from_dict

        return response_from_dict(result)
    return get_predict_response(request, result, model_name)
