"""Every door into the server, declared once: each REST route and each gRPC method.

A door says what it is (``kind``), where the model it acts on is named (``model``), whether it streams,
and what it does (``summary``). Everything that decides about a request reads this table and nothing
else: REST dispatch (:class:`RestRouter`), the controls at both doors (auth, scopes, the repository
switch, rate limits), which answers the response cache may give, and the OpenAPI document. What is not declared is
not served: REST answers 404, gRPC refuses the method, and a server whose gRPC services register an
undeclared method does not start.

Kinds:
  public  no key needed (probes, scrapes), unless the setting in ``protected_by`` asks for one;
  read    a key with the ``infer`` scope: metadata, statistics, listings, the docs, the console;
  infer   a key with the ``infer`` scope; counted by the per-client rate limit;
  admin   a key with the ``admin`` scope; refused for everybody when ``repository_api`` is off.

Where the model comes from (``model``):
  None            the door names no model;
  "path"          the ``{model_name}`` path segment;
  "body"          the JSON body's ``"model"`` field (OpenAI): checked once the body is parsed;
  "message:F"     the gRPC request message's field F;
  "all"           an aggregate view over every model: a key limited to some models sees only those;
  "every"         a view over every model that cannot be filtered: a key limited to some models is refused.
A gRPC door with ``aggregate`` set is an aggregate view when its message field is empty.

This module imports only the standard library, so the controls, the transports, the docs and the
tests can all read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterable

PUBLIC, READ, INFER, ADMIN = "public", "read", "infer", "admin"
# The ASGI scope key where the REST controls or the REST app leave the (door, handler, path parameters)
# they matched: the app does not match again, and the request edge names the access log line and span by it.
MATCH = "modelport.door"
# The route of a request that matched no door (a 404, a 405): one fixed name, never the raw path.
UNMATCHED = "unmatched"
KINDS = (PUBLIC, READ, INFER, ADMIN)
MODEL_SOURCES = (None, "path", "body", "all", "every")


@dataclass(frozen=True)
class Door:
    name: str  # unique; picks the REST app's handler; the OpenAPI operationId
    method: str  # HTTP method; "RPC" (unary) or "STREAM" for gRPC
    path: str  # REST path pattern ("/v2/models/{model_name}/infer") or gRPC "/package.Service/Method"
    kind: str
    model: str | None = None
    stream: bool = False
    summary: str = ""
    protected_by: str | None = None  # a public door: the setting that makes it need a key
    aggregate: bool = False  # gRPC: an empty model field means every model (answered filtered)
    cache: bool = False  # the response cache may answer it

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Door {self.name}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.model not in MODEL_SOURCES and not (self.model or "").startswith("message:"):
            raise ValueError(f"Door {self.name}: model source {self.model!r} is not one of {MODEL_SOURCES} or message:FIELD")
        if self.protected_by is not None and self.kind != PUBLIC:
            raise ValueError(f"Door {self.name}: only a public door has protected_by")
        if self.model == "path" and "{model_name}" not in self.path:
            raise ValueError(f"Door {self.name}: model from the path, but {self.path} has no {{model_name}}")

    @property
    def every_model(self) -> bool:
        """An aggregate view: answered with the caller's models only."""
        return self.model == "all" or self.aggregate

    @cached_property  # built once per door, not per logged or traced request
    def route(self) -> str:
        """The declared pattern, low-cardinality: "POST /v2/models/{model_name}/infer", or the gRPC
        method ("/inference.GRPCInferenceService/ModelInfer"). Names access log lines and spans."""
        return self.path if self.method in ("RPC", "STREAM") else f"{self.method} {self.path}"

    @property
    def field(self) -> str | None:
        """The gRPC message field that names the model."""
        return self.model[len("message:"):] if self.model and self.model.startswith("message:") else None


# -- REST ------------------------------------------------------------------------------------------
def _v2_model_doors(prefix: str, suffix: str, what: str) -> list[Door]:
    p = prefix
    return [
        Door("v2.model_metadata" + suffix, "GET", p, READ, "path", summary=f"Model metadata{what}"),
        Door("v2.model_ready" + suffix, "GET", p + "/ready", PUBLIC, "path", summary=f"Model readiness{what}",
             protected_by="auth_health"),
        Door("v2.model_stats" + suffix, "GET", p + "/stats", READ, "path", summary=f"Model statistics (Triton){what}"),
        Door("v2.model_health" + suffix, "GET", p + "/health", READ, "path",
             summary=f"Model health over the last health_window seconds{what}"),
        Door("v2.infer" + suffix, "POST", p + "/infer", INFER, "path", cache=True,
             summary=f"Inference (Open Inference Protocol){what}"),
        Door("v2.infer_stream" + suffix, "POST", p + "/infer_stream", INFER, "path", stream=True,
             summary=f"Inference answered as server-sent events, one V2 response per event{what}"),
        Door("v2.generate" + suffix, "POST", p + "/generate", INFER, "path",
             summary=f"Text generation (Triton's generate extension), one answer{what}"),
        Door("v2.generate_stream" + suffix, "POST", p + "/generate_stream", INFER, "path", stream=True,
             summary=f"Text generation as server-sent events{what}"),
    ]


def _shm_doors() -> list[Door]:
    p = "/v2/systemsharedmemory"
    return [
        Door("shm.status", "GET", p + "/status", ADMIN, "every", summary="Every registered system shared-memory region"),
        Door("shm.region_status", "GET", p + "/region/{region_name}/status", ADMIN, "every",
             summary="One registered system shared-memory region"),
        Door("shm.register", "POST", p + "/region/{region_name}/register", ADMIN, "every",
             summary="Register a region of a shared-memory object under /dev/shm ({\"key\", \"offset\", \"byte_size\"})"),
        Door("shm.unregister", "POST", p + "/region/{region_name}/unregister", ADMIN, "every",
             summary="Unregister one system shared-memory region (unmapped once no request uses it)"),
        Door("shm.unregister_all", "POST", p + "/unregister", ADMIN, "every",
             summary="Unregister every system shared-memory region"),
    ]


_OPENAI = [
    ("completions", "/completions", "Completions"),
    ("chat_completions", "/chat/completions", "Chat completions"),
    ("embeddings", "/embeddings", "Embeddings"),
]

REST: tuple[Door, ...] = (
    # Server
    Door("v1.alive", "GET", "/", PUBLIC, summary="KServe V1 liveness", protected_by="auth_health"),
    Door("v2.live", "GET", "/v2/health/live", PUBLIC, summary="Server liveness", protected_by="auth_health"),
    Door("v2.ready", "GET", "/v2/health/ready", PUBLIC, summary="Server readiness: every model it serves is ready",
         protected_by="auth_health"),
    Door("v2.server_metadata", "GET", "/v2", READ, summary="Server metadata"),
    Door("metrics", "GET", "/metrics", PUBLIC, summary="Prometheus metrics", protected_by="auth_metrics"),
    Door("openapi", "GET", "/openapi.json", READ, "all", summary="This OpenAPI document (per-model operations: the caller's models)"),
    Door("docs", "GET", "/docs", READ, summary="The API docs page (Swagger UI)"),
    Door("docs.asset", "GET", "/docs/{asset}", READ, summary="The API docs page's own files"),
    # Open Inference Protocol (V2), per model and per model version
    Door("v2.stats", "GET", "/v2/models/stats", READ, "all",
         summary="Statistics of every model (a key limited to some models sees those only)"),
    *_v2_model_doors("/v2/models/{model_name}", "", ""),
    *_v2_model_doors("/v2/models/{model_name}/versions/{model_version}", ".version", " (one version)"),
    # KServe V1
    Door("v1.models", "GET", "/v1/models", READ, "all", summary="V1 model list (a key limited to some models sees those only)"),
    Door("v1.model_ready", "GET", "/v1/models/{model_name}", PUBLIC, "path", summary="V1 model status",
         protected_by="auth_health"),
    Door("v1.predict", "POST", "/v1/models/{model_name}:predict", INFER, "path", summary="V1 predict"),
    Door("v1.explain", "POST", "/v1/models/{model_name}:explain", INFER, "path", summary="V1 explain"),
    # OpenAI-compatible routes, under /openai/v1 and (except models, which is KServe V1's) /v1
    Door("openai.models", "GET", "/openai/v1/models", READ, "all", summary="OpenAI model list (generative models)"),
    Door("openai.model", "GET", "/openai/v1/models/{model_name}", READ, "path", summary="One OpenAI model card"),
    *(Door(f"openai.{n}", "POST", "/openai/v1" + p, INFER, "body", stream=n != "embeddings",
           summary=f"OpenAI {s.lower()} (the model is the body's \"model\"; \"stream\": true answers with events)")
      for n, p, s in _OPENAI),
    *(Door(f"openai.{n}.v1", "POST", "/v1" + p, INFER, "body", stream=n != "embeddings",
           summary=f"OpenAI {s.lower()}, the same as /openai/v1{p}")
      for n, p, s in _OPENAI),
    # The repository API and routing policies: admin
    Door("repository.index", "POST", "/v2/repository/index", ADMIN, "all",
         summary="Every model in the repository, with its state"),
    Door("repository.load", "POST", "/v2/repository/models/{model_name}/load", ADMIN, "path",
         summary="Load (or reload) a model"),
    Door("repository.unload", "POST", "/v2/repository/models/{model_name}/unload", ADMIN, "path",
         summary="Unload a model after its in-flight requests finish"),
    Door("routing.traffic", "POST", "/v2/repository/models/{model_name}/traffic", ADMIN, "path",
         summary="Show (no body) or set a model's traffic policy over its versions"),
    Door("routing.promote", "POST", "/v2/repository/models/{model_name}/promote", ADMIN, "path",
         summary="Send all traffic that names no version to one loaded version (blue-green)"),
    Door("routing.rollback", "POST", "/v2/repository/models/{model_name}/rollback", ADMIN, "path",
         summary="Restore the traffic policy before the last change"),
    # Triton's system shared-memory extension (modelport/shm.py): off unless the server turns it on. Admin,
    # status too: registering maps memory of the server's host, and the status lists the host's keys.
    # Server-wide ("every"): a key limited to some models is refused. Tensors in a region go by infer.
    *_shm_doors(),
)

# The console (modelport.ui), a mount at /ui: the page shell and its files public, its GET APIs read; it changes nothing itself
# (its buttons call the repository API, an admin door).
CONSOLE: tuple[Door, ...] = (
    Door("ui.page", "GET", "/ui", PUBLIC, summary="The web console (the page shell: with api_keys on it holds no data "
         "and asks for a key)"),
    Door("ui.static", "GET", "/ui/static/{asset}", PUBLIC, summary="The console's own files"),
    Door("ui.models", "GET", "/ui/api/models", READ, "all", summary="The console's model and server view"),
    Door("ui.model", "GET", "/ui/api/models/{model_name}", READ, "path", summary="The console's view of one model"),
    Door("ui.stats", "GET", "/ui/api/stats", READ, "all", summary="The console's live counters"),
    Door("ui.history", "GET", "/ui/api/history", READ, "all", summary="The server's chart history"),
    Door("ui.model_history", "GET", "/ui/api/history/{model_name}", READ, "path", summary="One model's chart history"),
)


# MLflow's scoring protocol (transports/rest/mlflow_scoring.py), one mount per path. /invocations names
# its model in the x-modelport-model header (or scores the only MLflow model): the handler checks it.
MLFLOW: tuple[Door, ...] = (
    Door("mlflow.invocations", "POST", "/invocations", INFER, "body",
         summary="MLflow scoring (dataframe_split, dataframe_records, instances, inputs, or CSV); the model is "
                 "the x-modelport-model header's, or the only MLflow model"),
    Door("mlflow.ping", "GET", "/ping", PUBLIC, summary="MLflow readiness: 200 when every model is ready",
         protected_by="auth_health"),
    Door("mlflow.health", "GET", "/health", PUBLIC, summary="MLflow readiness (the same as /ping)",
         protected_by="auth_health"),
    Door("mlflow.version", "GET", "/version", READ, summary="The installed MLflow's version"),
)


# -- gRPC ------------------------------------------------------------------------------------------
_INFERENCE = "/inference.GRPCInferenceService/"
_MLSERVER = "/inference.model_repository.ModelRepositoryService/"
_HEALTH = "/grpc.health.v1.Health/"

GRPC: tuple[Door, ...] = (
    Door("grpc.ServerLive", "RPC", _INFERENCE + "ServerLive", PUBLIC, summary="Server liveness", protected_by="auth_health"),
    Door("grpc.ServerReady", "RPC", _INFERENCE + "ServerReady", PUBLIC, summary="Server readiness", protected_by="auth_health"),
    Door("grpc.ModelReady", "RPC", _INFERENCE + "ModelReady", PUBLIC, "message:name", summary="Model readiness",
         protected_by="auth_health"),
    Door("grpc.ServerMetadata", "RPC", _INFERENCE + "ServerMetadata", READ, summary="Server metadata"),
    Door("grpc.ModelMetadata", "RPC", _INFERENCE + "ModelMetadata", READ, "message:name", summary="Model metadata"),
    Door("grpc.ModelInfer", "RPC", _INFERENCE + "ModelInfer", INFER, "message:model_name", cache=True, summary="Inference"),
    Door("grpc.ModelStreamInfer", "STREAM", _INFERENCE + "ModelStreamInfer", INFER, "message:model_name", stream=True,
         summary="Inference over a bidirectional stream; each message checked and counted"),
    Door("grpc.ModelStatistics", "RPC", _INFERENCE + "ModelStatistics", READ, "message:name", aggregate=True,
         summary="Model statistics; an empty name: every model the caller may call"),
    Door("grpc.RepositoryIndex", "RPC", _INFERENCE + "RepositoryIndex", ADMIN, "all", summary="Repository index"),
    Door("grpc.RepositoryModelLoad", "RPC", _INFERENCE + "RepositoryModelLoad", ADMIN, "message:model_name",
         summary="Load a model"),
    Door("grpc.RepositoryModelUnload", "RPC", _INFERENCE + "RepositoryModelUnload", ADMIN, "message:model_name",
         summary="Unload a model"),
    # MLServer's (and ModelMesh's) repository service: the same operations, the same kinds.
    # Triton's system shared-memory extension (modelport/shm.py): as the REST doors.
    Door("grpc.SystemSharedMemoryStatus", "RPC", _INFERENCE + "SystemSharedMemoryStatus", ADMIN, "every",
         summary="System shared-memory regions (an empty name: every one)"),
    Door("grpc.SystemSharedMemoryRegister", "RPC", _INFERENCE + "SystemSharedMemoryRegister", ADMIN, "every",
         summary="Register a system shared-memory region"),
    Door("grpc.SystemSharedMemoryUnregister", "RPC", _INFERENCE + "SystemSharedMemoryUnregister", ADMIN, "every",
         summary="Unregister a system shared-memory region (an empty name: every one)"),
    Door("mlserver.RepositoryIndex", "RPC", _MLSERVER + "RepositoryIndex", ADMIN, "all", summary="Repository index (MLServer)"),
    Door("mlserver.RepositoryModelLoad", "RPC", _MLSERVER + "RepositoryModelLoad", ADMIN, "message:model_name",
         summary="Load a model (MLServer)"),
    Door("mlserver.RepositoryModelUnload", "RPC", _MLSERVER + "RepositoryModelUnload", ADMIN, "message:model_name",
         summary="Unload a model (MLServer)"),
    Door("health.Check", "RPC", _HEALTH + "Check", PUBLIC, summary="gRPC health checking", protected_by="auth_health"),
    Door("health.Watch", "STREAM", _HEALTH + "Watch", PUBLIC, stream=True, summary="gRPC health watch",
         protected_by="auth_health"),
    # Served by grpcio-health-checking 1.85 and later (the health service lists every service's status).
    Door("health.List", "RPC", _HEALTH + "List", PUBLIC, summary="gRPC health: every service's status",
         protected_by="auth_health"),
)
# Declared methods an older release of a library we register may not serve (its descriptor lacks them).
OPTIONAL_GRPC = frozenset((_HEALTH + "List",))
GRPC_BY_METHOD: dict[str, Door] = {d.path: d for d in GRPC}


# -- REST dispatch: a tree of path segments, compiled once -----------------------------------------
class RouteMiss(Exception):
    """No door at this path (``allowed`` empty: 404), or not for this method (405, ``allowed`` lists them)."""

    def __init__(self, path: str, allowed: tuple[str, ...] = ()):
        super().__init__(path)
        self.path = path
        self.allowed = allowed


_MEMO_SIZE = 4096


class _Node:
    __slots__ = ("literal", "param", "suffixed", "methods")

    def __init__(self) -> None:
        self.literal: dict[str, _Node] = {}
        self.param: tuple[str, _Node] | None = None  # {name}: any non-empty segment
        self.suffixed: list[tuple[str, str, _Node]] = []  # {name}:verb (KServe V1): (":verb", name, node)
        self.methods: dict[str, tuple[Door, object]] = {}


class RestRouter:
    """Method and path → (door, its handler, the path parameters). A path seen before is one dictionary
    look-up; a new one is one split and a dictionary step per segment (a parameter is tried after a
    literal fails). No regular expression, no scan of the routes."""

    def __init__(self, routes: Iterable[tuple[Door, object]] = ()):
        self.root = _Node()
        self.doors: list[Door] = []
        self._memo: dict[str, tuple[_Node, dict[str, str]]] = {}
        for door, handler in routes:
            self.add(door, handler)

    def add(self, door: Door, handler: object) -> None:
        if not door.path.startswith("/"):
            raise ValueError(f"Door {door.name}: a REST path starts with '/': {door.path!r}")
        node = self.root
        for segment in _segments(door.path):
            if segment.startswith("{"):
                name, _, tail = segment[1:].partition("}")
                verb = tail[1:]
                if tail and (not tail.startswith(":") or not verb):
                    raise ValueError(f"Door {door.name}: a parameter segment is {{name}} or {{name}}:verb, not {segment!r}")
                if verb:  # "{model_name}:predict"
                    found = next((n for s, p, n in node.suffixed if s == tail and p == name), None)
                    if found is None:
                        found = _Node()
                        node.suffixed.append((tail, name, found))  # (":predict", "model_name", node)
                    node = found
                else:
                    if node.param is None:
                        node.param = (name, _Node())
                    elif node.param[0] != name:
                        raise ValueError(f"Door {door.name}: parameter {{{name}}} clashes with {{{node.param[0]}}}")
                    node = node.param[1]
            else:
                node = node.literal.setdefault(segment, _Node())
        if door.method in node.methods:
            raise ValueError(f"Door {door.name}: {door.method} {door.path} is declared twice")
        node.methods[door.method] = (door, handler)
        self.doors.append(door)
        self._memo.clear()

    def match(self, method: str, path: str) -> tuple[Door, object, dict[str, str]]:
        # The paths in use are few (a model name × an action): a hit is one dictionary look-up. The
        # memo is bounded (emptied when full), so a stream of distinct paths costs a walk each, no memory.
        found = self._memo.get(path)
        if found is None:
            params: dict[str, str] = {}
            node = _walk(self.root, path.split("/")[1:] if path != "/" else [], 0, params) if path[:1] == "/" else None
            if node is None:
                raise RouteMiss(path)
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            found = self._memo[path] = (node, params)
        node, params = found
        found = node.methods.get(method)
        if found is None and method == "HEAD":
            found = node.methods.get("GET")
        if found is None:
            raise RouteMiss(path, tuple(node.methods))
        return found[0], found[1], params


def _segments(path: str) -> list[str]:
    return [] if path == "/" else path.split("/")[1:]


def _walk(node: _Node, segments: list[str], i: int, params: dict[str, str]) -> _Node | None:
    if i == len(segments):
        return node if node.methods else None
    segment = segments[i]
    child = node.literal.get(segment)
    if child is not None:
        found = _walk(child, segments, i + 1, params)
        if found is not None:
            return found
    if not segment:  # an empty segment ("//", a trailing "/") is never a parameter
        return None
    for colon_verb, name, child in node.suffixed:
        if segment.endswith(colon_verb) and len(segment) > len(colon_verb):
            params[name] = segment[: -len(colon_verb)]
            found = _walk(child, segments, i + 1, params)
            if found is not None:
                return found
            del params[name]
    if node.param is not None and not (node.suffixed and ":" in segment):  # "{m}:verb" never falls to "{m}"
        name, child = node.param
        params[name] = segment
        found = _walk(child, segments, i + 1, params)
        if found is not None:
            return found
        del params[name]
    return None


__all__ = [
    "ADMIN", "CONSOLE", "Door", "MLFLOW", "OPTIONAL_GRPC", "GRPC", "GRPC_BY_METHOD", "INFER", "KINDS", "MATCH", "PUBLIC", "READ", "REST",
    "RestRouter", "RouteMiss", "UNMATCHED",
]
