"""Inference graphs served as a model, with KServe InferenceGraph's node kinds.

A graph is declared in model-settings (``"graph": {"nodes": {"root": {...}}}``) or built in code
(``GraphModel("g", graph={...})``). The data plane serves it like any model, so REST (V1 and V2) and
gRPC get it; a V2 request flows through the graph as V2 tensors, a V1 request as V1 JSON.

Nodes (``routerType``):
- ``Sequence``: steps in order; each step gets the previous step's answer (``"data": "$response"``,
  the default) or the graph's request (``"data": "$request"``). A step whose ``condition`` does not
  match ends the sequence (KServe's rule); the answer so far is returned.
- ``Switch``: the first step whose ``condition`` matches the input runs; none matching is an error.
- ``Ensemble``: every step runs concurrently on the input; the answers are merged under the step
  names (V2: outputs named ``<step>.<output>``; V1: ``{"<step>": answer}``).
- ``Splitter``: one step by ``weight`` (exact smooth weighted round-robin, as traffic policies).

A step targets a local model (``model``/``serviceName``, optional ``version``; called in process
through the data plane, no HTTP hop), a remote endpoint (``serviceUrl`` + ``model``, ``protocol``
``v2`` (default), ``v1`` or ``grpc-v2``, through :mod:`modelport.client`), or another node
(``nodeName``). ``dependency``: ``Hard`` stops the graph with the step's error (named); ``Soft`` (the
default, as in KServe) leaves the failed step out and goes on, listing it in the answer's
``graph_errors`` parameter (V2) or under its name (V1 ensembles), and logs a warning; when no step
answered, the answer has no outputs (never the request's inputs handed back as if they were one).

Recursion: a graph whose local steps lead back to itself (directly, or through other graphs) fails
its load, naming the cycle. Calls a load-time check cannot see (remote steps, models swapped later)
are bounded at run time: each graph call adds one to the ``x-modelport-graph-depth`` header it passes
on (to remote steps too), and a request deeper than :data:`MAX_DEPTH` graphs is refused.

Conditions are a practical subset of GJSON paths over the step's input as JSON (a V2 request reads
as ``{"inputs": [{"name", "datatype", "shape", "data"}], "parameters": ...}``, a V2 answer as
``{"outputs": [...]}``): ``a.b.0``, ``inputs.#`` (a count), ``inputs.#.name`` (a list), and queries
``inputs.#(name=="x")`` / ``instances.#(>10)#`` with ``== != < <= > >= %`` (``%`` a ``*``/``?``
pattern). A condition matches when its path exists, as KServe's ``gjson.Get(...).Exists()``.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import re
import time
from typing import Any

import numpy as np

from ..errors import ErrorCode, InvalidInput, ModelportError
from ..model import Model
from ..types import InferInput, InferOutput, InferRequest, InferResponse
from .policy import TrafficPolicy

logger = logging.getLogger("modelport")

KINDS = ("Sequence", "Switch", "Ensemble", "Splitter")
# Graphs nested in one request (local and remote hops alike); deeper is a loop, not a design.
MAX_DEPTH = 8
DEPTH_HEADER = "x-modelport-graph-depth"
_TOO_DEEP = "graph depth limit"  # in the message, so that it is recognised from a remote server too
_STEP_KEYS = {"name", "model", "serviceName", "version", "serviceUrl", "protocol", "nodeName", "data", "condition",
              "dependency", "weight"}


class GraphError(ModelportError):
    """A graph step failed (the step is named); the code is the step's own (bad input stays a 400)."""

    def __init__(self, reason: str, code: ErrorCode = ErrorCode.INTERNAL, status: int | None = None):
        super().__init__(reason)
        self.code = code
        self.status = status


class NoRouteMatched(ModelportError):
    code = ErrorCode.NOT_FOUND


class GraphTooDeep(ModelportError):
    code = ErrorCode.INVALID_INPUT


class GraphModel(Model):
    def __init__(self, name: str, graph: dict | None = None):
        super().__init__(name)
        self.graph = graph
        self.platform = "graph"
        self.nodes: dict[str, dict] = {}
        self._dataplane: Any = None
        self._metrics: Any = None
        self._splitters: dict[str, TrafficPolicy] = {}
        self._clients: dict[tuple[str, str], Any] = {}

    # -- lifecycle -----------------------------------------------------------------------------------
    def bind_dataplane(self, dataplane: Any, metrics: Any = None) -> None:
        """Called by the server before the graph turns ready: local steps go through this data plane."""
        self._dataplane = dataplane
        self._metrics = metrics

    async def load(self) -> bool:
        spec = self.graph or getattr(self.settings, "graph", None)
        self.graph = spec
        self.nodes = validate(self.name, spec)
        self._splitters = {
            name: TrafficPolicy({str(i): float(s["weight"]) for i, s in enumerate(node["steps"])})
            for name, node in self.nodes.items() if node["routerType"] == "Splitter"
        }
        self.ready = True
        return True

    async def stop(self) -> None:
        for client in self._clients.values():
            close = getattr(client, "aclose", None) or getattr(client, "close")
            await close()
        self._clients.clear()

    def metadata(self) -> dict[str, Any]:
        doc = super().metadata()
        doc["graph"] = self.graph
        return doc

    # -- serving ---------------------------------------------------------------------------------------
    def check_references(self, repository: Any) -> None:
        """Refuse to load when local steps lead back to this graph (itself, or graphs calling each other)."""
        cycle = _find_cycle(self.name, _local_targets(self.graph), repository)
        if cycle:
            raise InvalidInput(f"Graph {self.name}: its steps call it back in a cycle ({' -> '.join(cycle)}); "
                               "a graph cannot call itself")

    async def predict(self, payload: Any, headers: dict | None = None) -> Any:
        if self._dataplane is None:
            raise InvalidInput(f"Graph {self.name} is not attached to a server")
        headers = dict(headers or {})
        depth = _depth(headers) + 1
        if depth > MAX_DEPTH:
            raise GraphTooDeep(f"Graph {self.name}: the request passed through more than {MAX_DEPTH} graphs "
                               f"({_TOO_DEEP}; a graph that calls itself through remote steps?)")
        headers[DEPTH_HEADER] = str(depth)
        answer, errors = await self._node("root", payload, payload, headers, {})
        if answer is payload and errors:  # no step answered: say so, never hand the inputs back as an answer
            answer = InferResponse(payload.id, self.name, []) if isinstance(payload, InferRequest) else {"predictions": [], "graph_errors": errors}
        if isinstance(answer, InferRequest):  # every step was skipped: hand back what came in
            answer = _as_response(answer, self.name)
        if isinstance(answer, InferResponse):
            answer.model_name = self.name
            answer.id = payload.id if isinstance(payload, InferRequest) else answer.id
            if errors:
                answer.parameters = dict(answer.parameters or {}, graph_errors=errors)
        return answer

    async def _node(self, name: str, data: Any, request: Any, headers: dict, errors: dict) -> tuple[Any, dict]:
        node = self.nodes[name]
        kind, steps = node["routerType"], node["steps"]
        if kind == "Sequence":
            for i, step in enumerate(steps):
                source = request if step.get("data") == "$request" or (i == 0 and step.get("data") is None) else data
                if "condition" in step and not matches(source, step["condition"]):
                    break
                ok, answer = await self._step(step, source, request, headers, errors)
                if ok:
                    data = answer
            return data, errors
        if kind == "Switch":
            for step in steps:
                if "condition" not in step or matches(data, step["condition"]):
                    ok, answer = await self._step(step, data, request, headers, errors)
                    return (answer if ok else data), errors
            raise NoRouteMatched(f"Graph {self.name}: no step of Switch node {name!r} matched the request")
        if kind == "Splitter":
            step = steps[int(self._splitters[name].pick(None))]
            ok, answer = await self._step(step, data, request, headers, errors)
            return (answer if ok else data), errors
        # Ensemble: concurrently, merged under the step names.
        results = await asyncio.gather(*(self._step(step, data, request, headers, errors) for step in steps))
        return _merge(self.name, [(s["name"], ok, a) for s, (ok, a) in zip(steps, results)], data, errors), errors

    async def _step(self, step: dict, data: Any, request: Any, headers: dict, errors: dict) -> tuple[bool, Any]:
        started = time.perf_counter()
        outcome = "ok"
        try:
            if "nodeName" in step:
                answer, _ = await self._node(step["nodeName"], data, request, headers, errors)
            elif "serviceUrl" in step:
                answer = await self._remote(step, data, headers)
            else:
                answer = await self._local(step, data, headers)
            return True, answer
        except Exception as exc:  # noqa: BLE001 - named, then hard or soft
            outcome = "error"
            if isinstance(exc, ModelportError) and _TOO_DEEP in exc.reason:  # a loop: never soft
                raise exc if isinstance(exc, GraphTooDeep) else GraphTooDeep(exc.reason) from exc
            if isinstance(exc, (GraphError, NoRouteMatched)) and "nodeName" in step:
                message = exc.reason
            else:
                message = f"Graph {self.name}: step {step['name']!r} failed: {_public(exc)}"
            if step.get("dependency", "Soft") == "Hard":
                if isinstance(exc, GraphError):
                    raise
                raise GraphError(message, getattr(exc, "code", ErrorCode.INTERNAL), getattr(exc, "status", None)) from exc
            errors[step["name"]] = message
            logger.warning("Graph %s: Soft step %r failed, left out of the answer: %s", self.name, step["name"], exc)
            return False, exc
        finally:
            if self._metrics is not None:
                self._metrics.graph_steps.labels(self.name, step["name"], outcome).observe(time.perf_counter() - started)

    async def _local(self, step: dict, data: Any, headers: dict) -> Any:
        model = step["model"]
        if isinstance(data, dict) or not isinstance(data, (InferRequest, InferResponse)):
            result, _ = await self._dataplane.infer_v1(model, _v1_input(data), headers)
            return result
        response, _ = await self._dataplane.infer(_as_request(data, model, step.get("version")), headers)
        return response

    async def _remote(self, step: dict, data: Any, headers: dict) -> Any:
        protocol = step.get("protocol", "v2")
        client = self._client(step["serviceUrl"], protocol)
        forward = {k: v for k, v in headers.items() if k in ("authorization", "traceparent", "x-request-id", DEPTH_HEADER)}
        if protocol == "grpc-v2":
            return await client.infer(_as_request(data, step["model"], step.get("version")), headers=forward)
        if protocol == "v1":
            return await client.infer(step["serviceUrl"], _v1_input(data), model_name=step["model"], headers=forward)
        return await client.infer(step["serviceUrl"], _as_request(data, step["model"], step.get("version")),
                                  model_name=step["model"], headers=forward)

    def _client(self, url: str, protocol: str) -> Any:
        key = (url, protocol)
        client = self._clients.get(key)
        if client is None:
            from ..client import AsyncGRPCClient, AsyncRESTClient, RESTConfig

            if protocol == "grpc-v2":
                client = AsyncGRPCClient(url.split("://", 1)[-1])
            else:
                client = AsyncRESTClient(RESTConfig(protocol=protocol))
            self._clients[key] = client
        return client


# -- validation ----------------------------------------------------------------------------------------
def validate(graph: str, spec: Any) -> dict[str, dict]:
    """The graph's nodes, checked: a root, known kinds, well-formed steps, known nodes, no cycles."""
    if not isinstance(spec, dict) or not isinstance(spec.get("nodes"), dict):
        raise InvalidInput(f"Graph {graph}: needs {{\"nodes\": {{\"root\": {{\"routerType\": ..., \"steps\": [...]}}}}}}")
    nodes = spec["nodes"]
    if "root" not in nodes:
        raise InvalidInput(f"Graph {graph}: needs a node named \"root\"")
    out: dict[str, dict] = {}
    for name, node in nodes.items():
        where = f"Graph {graph}, node {name!r}"
        if not isinstance(node, dict):
            raise InvalidInput(f"{where}: must be an object")
        kind = next((k for k in KINDS if k.lower() == str(node.get("routerType", "")).lower()), None)
        if kind is None:
            raise InvalidInput(f"{where}: routerType must be one of {', '.join(KINDS)}")
        steps = node.get("steps")
        if not isinstance(steps, list) or not steps:
            raise InvalidInput(f"{where}: needs a non-empty list of steps")
        checked = []
        for i, raw in enumerate(steps):
            checked.append(_step(where, kind, i, raw))
        names = [s["name"] for s in checked]
        if len(set(names)) != len(names):
            raise InvalidInput(f"{where}: step names must be unique")
        out[name] = {"routerType": kind, "steps": checked}
    for name, node in out.items():
        for step in node["steps"]:
            if "nodeName" in step and step["nodeName"] not in out:
                raise InvalidInput(f"Graph {graph}, node {name!r}: step {step['name']!r} names unknown node {step['nodeName']!r}")
    _no_cycles(graph, out)
    return out


def _step(where: str, kind: str, i: int, raw: Any) -> dict:
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where}: step {i} must be an object")
    unknown = sorted(set(raw) - _STEP_KEYS)
    if unknown:
        raise InvalidInput(f"{where}: step {i} has unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_STEP_KEYS))}")
    step = dict(raw)
    if "serviceName" in step and "model" not in step:
        step["model"] = step.pop("serviceName")
    if "serviceUrl" in step:
        _parse_url(where, step)
    targets = [k for k in ("model", "nodeName") if k in step]
    if len(targets) != 1:
        raise InvalidInput(f"{where}: step {i} needs exactly one of \"model\" (or \"serviceName\", with \"serviceUrl\" for a remote one) or \"nodeName\"")
    step.setdefault("name", step.get("model") or step.get("nodeName"))
    if step.get("protocol", "v2") not in ("v1", "v2", "grpc-v2"):
        raise InvalidInput(f"{where}: step {step['name']!r} protocol must be v1, v2 or grpc-v2")
    if step.get("data", "$response") not in ("$request", "$response"):
        raise InvalidInput(f"{where}: step {step['name']!r} data must be \"$request\" or \"$response\"")
    dependency = str(step.get("dependency", "Soft")).capitalize()
    if dependency not in ("Hard", "Soft"):
        raise InvalidInput(f"{where}: step {step['name']!r} dependency must be Hard or Soft")
    step["dependency"] = dependency
    if "condition" in step and (not isinstance(step["condition"], str) or not step["condition"]):
        raise InvalidInput(f"{where}: step {step['name']!r} condition must be a GJSON path")
    if kind == "Splitter":
        weight = step.get("weight")
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight <= 0:
            raise InvalidInput(f"{where}: Splitter step {step['name']!r} needs a positive weight")
    if "version" in step:
        step["version"] = str(step["version"])
    return step


_URL_PATH = re.compile(r"^(?P<base>[a-z+]+://[^/]+)/(?P<proto>v1|v2)/models/(?P<model>[^/:]+)(?::predict|/infer)?/?$")


def _parse_url(where: str, step: dict) -> None:
    """A KServe-style full URL (``http://h/v1/models/m:predict``) gives the protocol and model too."""
    url = step["serviceUrl"]
    if not isinstance(url, str) or not url:
        raise InvalidInput(f"{where}: serviceUrl must be a URL")
    m = _URL_PATH.match(url)
    if m:
        step["serviceUrl"] = m.group("base")
        step.setdefault("protocol", m.group("proto"))
        step.setdefault("model", m.group("model"))
    if "model" not in step:
        raise InvalidInput(f"{where}: a serviceUrl step needs the remote \"model\" name")


def _no_cycles(graph: str, nodes: dict) -> None:
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name) == 1:
            raise InvalidInput(f"Graph {graph}: node {name!r} is part of a cycle")
        if state.get(name) == 2:
            return
        state[name] = 1
        for step in nodes[name]["steps"]:
            if "nodeName" in step:
                visit(step["nodeName"])
        state[name] = 2

    visit("root")


def _local_targets(spec: Any) -> set[str]:
    """The local models a graph spec's steps name (tolerant: another graph's spec may be invalid)."""
    targets: set[str] = set()
    nodes = spec.get("nodes") if isinstance(spec, dict) else None
    for node in (nodes or {}).values() if isinstance(nodes, dict) else ():
        for step in (node.get("steps") or []) if isinstance(node, dict) else ():
            if isinstance(step, dict) and "serviceUrl" not in step:
                target = step.get("model", step.get("serviceName"))
                if isinstance(target, str):
                    targets.add(target)
    return targets


def _graph_spec(repository: Any, name: str) -> Any:
    """The graph spec of model ``name`` in the repository (any version), or None if it is not a graph."""
    for entry in repository.entries_of(name):
        spec = getattr(entry.model, "graph", None) or getattr(entry.settings, "graph", None)
        if spec:
            return spec
    return None


def _find_cycle(start: str, targets: set[str], repository: Any) -> list[str] | None:
    """A path of graph names from ``start`` back to itself through local steps, or None."""
    seen: set[str] = set()

    def walk(path: list[str], names: set[str]) -> list[str] | None:
        for name in sorted(names):
            if name == start:
                return [*path, name]
            if name in seen:
                continue
            seen.add(name)
            spec = _graph_spec(repository, name)
            found = walk([*path, name], _local_targets(spec)) if spec else None
            if found:
                return found
        return None

    return walk([start], targets)


def _depth(headers: dict) -> int:
    try:
        return max(0, int(headers.get(DEPTH_HEADER, 0)))
    except (TypeError, ValueError):
        return 0


# -- data between steps ------------------------------------------------------------------------------
def _as_request(data: Any, model: str, version: str | None) -> InferRequest:
    if isinstance(data, InferRequest):
        return InferRequest(model, data.inputs, data.id, parameters=dict(data.parameters), model_version=version)
    if isinstance(data, InferResponse):
        inputs = [InferInput(o.name, list(o.shape), o.datatype, o.as_numpy()) for o in data.outputs]
        return InferRequest(model, inputs, data.id, model_version=version)
    raise InvalidInput(f"A V2 step of model {model} cannot take a V1 payload")


def _as_response(request: InferRequest, name: str) -> InferResponse:
    outputs = [InferOutput(t.name, list(t.shape), t.datatype, t.as_numpy()) for t in request.inputs]
    return InferResponse(request.id, name, outputs)


def _v1_input(data: Any) -> Any:
    """V1 answers feed the next step as KServe's mapPredictionsToInstances does."""
    if isinstance(data, dict) and "predictions" in data and "instances" not in data:
        return {"instances": data["predictions"]}
    return data


def _merge(graph: str, results: list[tuple[str, bool, Any]], data: Any, errors: dict) -> Any:
    if isinstance(data, (InferRequest, InferResponse)):
        outputs = []
        for step, ok, answer in results:
            if ok and isinstance(answer, InferResponse):
                for o in answer.outputs:
                    outputs.append(InferOutput(f"{step}.{o.name}", list(o.shape), o.datatype, o.as_numpy()))
        return InferResponse(getattr(data, "id", None), graph, outputs)
    return {step: (answer if ok else {"error": errors.get(step, str(answer))}) for step, ok, answer in results}


def _public(exc: BaseException) -> str:
    if isinstance(exc, ModelportError):
        return exc.reason or type(exc).__name__
    return "the model failed; see the server log"


# -- conditions (a GJSON subset) ---------------------------------------------------------------------
_MISSING = object()
_QUERY = re.compile(r"^#\((?P<key>[^=!<>%]*?)\s*(?P<op>==|!=|<=|>=|<|>|%|!%)\s*(?P<value>.+?)\)(?P<all>#?)$")


def matches(data: Any, condition: str) -> bool:
    return _get(_json_view(data), _split(condition)) is not _MISSING


def _json_view(data: Any) -> Any:
    if isinstance(data, InferRequest):
        return {"id": data.id, "parameters": data.parameters, "inputs": [_tensor(t) for t in data.inputs]}
    if isinstance(data, InferResponse):
        return {"id": data.id, "model_name": data.model_name, "parameters": data.parameters or {},
                "outputs": [_tensor(t) for t in data.outputs]}
    return data


def _tensor(t: Any) -> dict:
    array = t.as_numpy()
    flat = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in np.asarray(array).ravel().tolist()]
    return {"name": t.name, "datatype": t.datatype, "shape": list(t.shape), "data": flat, "parameters": dict(t.parameters or {})}


def _split(path: str) -> list[str]:
    """Split on dots outside #(...) queries; ``\\.`` escapes a dot, as in GJSON."""
    parts, buf, depth, i = [], "", 0, 0
    while i < len(path):
        c = path[i]
        if c == "\\" and i + 1 < len(path):
            buf += path[i + 1]
            i += 2
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "." and depth == 0:
            parts.append(buf)
            buf = ""
        else:
            buf += c
        i += 1
    parts.append(buf)
    return parts


def _get(value: Any, parts: list[str]) -> Any:
    for n, part in enumerate(parts):
        if value is _MISSING:
            return _MISSING
        if part == "#":
            if not isinstance(value, list):
                return _MISSING
            if n == len(parts) - 1:
                return len(value)
            found = [r for r in (_get(v, parts[n + 1:]) for v in value) if r is not _MISSING]
            return found
        q = _QUERY.match(part)
        if q:
            if not isinstance(value, list):
                return _MISSING
            hits = [v for v in value if _test(v, q.group("key"), q.group("op"), q.group("value"))]
            if q.group("all"):
                value = hits
            else:
                value = hits[0] if hits else _MISSING
            continue
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.isdigit():
            value = value[int(part)] if int(part) < len(value) else _MISSING
        else:
            return _MISSING
    return value


def _test(item: Any, key: str, op: str, raw: str) -> bool:
    left = _get(item, _split(key.strip())) if key.strip() else item
    if left is _MISSING:
        return False
    try:
        right = json.loads(raw)
    except ValueError:
        right = raw.strip().strip('"')
    if op in ("%", "!%"):
        hit = isinstance(left, str) and fnmatch.fnmatchcase(left, str(right))
        return hit if op == "%" else not hit
    try:
        return {"==": left == right, "!=": left != right, "<": left < right, "<=": left <= right,
                ">": left > right, ">=": left >= right}[op]
    except TypeError:
        return False


__all__ = ["GraphModel", "GraphError", "GraphTooDeep", "NoRouteMatched", "MAX_DEPTH", "DEPTH_HEADER", "matches", "validate"]
