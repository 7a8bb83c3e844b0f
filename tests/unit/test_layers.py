"""The package's layer order (docs/ARCHITECTURE.md) and the shim rule, checked on the import graph.

A module may import its own layer or a lower one, never a higher one, and the graph has no cycle, with
function-level imports counted. Today's known exceptions are listed below, each with its reason: a new
one fails, and so does an entry that no longer happens (the lists only shrink). The regroup script
(notes/regroup/apply.py) removes the entries its moves fix.
"""

from __future__ import annotations

import ast

from tests import import_graph

# Lowest first. A name covers a module of modelport and everything under it; the longest name wins.
LAYERS: list[tuple[str, list[str]]] = [
    ("foundation", ["_version", "_optional", "errors", "redact", "doors", "compat.mlserver.config_keys"]),
    ("types", ["types"]),
    ("wire", ["wire"]),
    ("model and configuration", ["model", "models", "settings", "storage", "streaming", "observability", "openai",
                                 "shm", "predict_io"]),
    ("execution and repository", ["execution", "repository", "runtimes"]),
    ("data plane", ["dataplane"]),
    ("routing", ["routing"]),
    ("controls", ["controls"]),
    ("doors", ["transports", "client", "openai.routes", "ui"]),
    ("compat", ["compat"]),
    ("composition", ["serving", "deploy", "bench", "ray"]),
    ("cli", ["cli"]),
    ("import paths and the package root", ["", "model_server", "model_repository", "logging", "protocol", "constants",
                                           "utils", "inference_client", "predictor_config", "examples", "mlserver",
                                           "metrics", "openai.model", "openai.generation", "openai.types"]),
]

# (importer, imported): why it is tolerated today. One entry a line (the regroup script edits them).
ALLOWED: dict[tuple[str, str], str] = {
    ("modelport.controls.rest", "modelport.transports.rest.app"): "the REST controls reuse the app's error answers; they belong in transports.rest.errors",
    ("modelport.dataplane.plane", "modelport.routing.router"): "VERSION_HEADER and the router the composition root sets on the plane; routing should wrap the plane instead",
    ("modelport.deploy.ray_serve", "modelport.cli"): "configure_logging lives in the CLI; a Ray replica sets logging up the same way",
    ("modelport.serving.server", "modelport.cli"): "configure_logging lives in the CLI; ModelServer.start sets logging up as KServe's does",
    ("modelport.repository.entries", "modelport.compat.mlserver.adapter"): "an MLServer runtime named in model-settings is wrapped by the compat adapter; adapters should be passed in as data",
    ("modelport.routing.graph", "modelport.client"): "a graph step on a remote server is called with the REST client",
    ("modelport.settings", "modelport.repository.residency"): "validates memory_budget with the residency size parser",
    ("modelport.transports.grpc.errors", "modelport.compat.kserve.http_exception"): "a KServe hook raising fastapi's HTTPException gets KServe's status",
    ("modelport.transports.rest.errors", "modelport.compat.kserve.http_exception"): "a KServe hook raising fastapi's HTTPException gets KServe's status",
    ("modelport.types", "modelport.wire.grpc.convert"): "KServe's InferRequest.to_grpc/from_grpc methods; they belong in compat",
    ("modelport.types", "modelport.wire.v2_json"): "KServe's InferRequest.from_bytes/to_rest methods; they belong in compat",
    ("modelport.types", "modelport.compat.kserve.to_rest"): "KServe's to_rest key order; the methods belong in compat",
    ("modelport.serving.workers", "modelport.serving.server"): "same layer, a cycle: a worker child builds a ModelServer, which starts the workers; bind_socket should move out",
    ("modelport.compat.mlserver.codecs", "modelport.compat.mlserver.codecs_json"): "same layer, a cycle: the codecs call the JSON helpers that import them back",
}

# KServe's and MLServer's import paths under modelport: each module only re-exports (imports, __all__,
# and at most a module __getattr__). A name covers everything under it.
SHIM_PATHS = ["model_server", "model_repository", "logging", "protocol", "constants", "utils", "mlserver",
              "inference_client", "predictor_config", "metrics", "openai.model", "openai.generation", "openai.types"]

# Shim modules that still hold code today, each with why (the regroup moves the code under compat/).
SHIMS_WITH_CODE: dict[str, str] = {
    "modelport.logging": "configure_logging and the trace logger, as kserve.logging has them",
}


def _covering(module: str, names: list[str]) -> str | None:
    rest = module.removeprefix("modelport").removeprefix(".")
    best = None
    for name in names:
        if (name == "" or rest == name or rest.startswith(name + ".")) and (best is None or len(name) > len(best)):
            best = name
    return best


def layer_of(module: str) -> int:
    best: tuple[int, int] | None = None
    for rank, (_, names) in enumerate(LAYERS):
        name = _covering(module, names)
        if name is not None and (best is None or len(name) > best[1]):
            best = (rank, len(name))
    assert best is not None, module
    return best[0]


def upward_edges(edges: list[import_graph.Edge]) -> dict[tuple[str, str], import_graph.Edge]:
    return {(e.source, e.target): e for e in edges if layer_of(e.target) > layer_of(e.source)}


def graph_without_allowed(edges: list[import_graph.Edge]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for e in edges:
        if (e.source, e.target) not in ALLOWED:
            graph.setdefault(e.source, set()).add(e.target)
    return graph


def gone_allowed() -> list[tuple[str, str]]:
    """Entries naming a module that no longer exists (a branch removed or moved it): inert, and dropped by
    the regroup script; not a failure, so that merging such a branch does not turn this test red."""
    known = import_graph.modules()
    return [key for key in ALLOWED if key[0] not in known or key[1] not in known]


def stale_allowed() -> list[tuple[str, str]]:
    """Entries whose import is gone or no longer breaks a rule (neither upward nor closing a cycle)."""
    edges = import_graph.edges()
    pairs = {(e.source, e.target) for e in edges}
    upward = upward_edges(edges)
    gone = set(gone_allowed())
    stale = []
    for key in ALLOWED:
        if key in gone:
            continue
        if key not in pairs:
            stale.append(key)
        elif key not in upward:
            graph = graph_without_allowed(edges)
            graph.setdefault(key[0], set()).add(key[1])
            if not any(key[0] in c and key[1] in c for c in import_graph.cycles(graph)):
                stale.append(key)
    return stale


def is_shim_path(module: str) -> bool:
    return _covering(module, SHIM_PATHS) not in (None, "")


def code_in(path) -> list[str]:
    """What a shim's top level holds beyond a docstring, imports, ``__all__`` and a ``__getattr__``."""
    found = []
    for i, node in enumerate(ast.parse(path.read_text()).body):
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if all(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                continue
        if isinstance(node, ast.FunctionDef) and node.name in ("__getattr__", "__dir__"):
            continue
        found.append(f"line {node.lineno}: {type(node).__name__}")
    return found


def shims_with_code() -> dict[str, list[str]]:
    return {
        name: code
        for name, path in import_graph.modules().items()
        if is_shim_path(name) and (code := code_in(path))
    }


def stale_shims() -> list[str]:
    return sorted(set(SHIMS_WITH_CODE) - set(shims_with_code()))


def test_every_module_has_a_layer_of_its_own():
    """A new top-level module or package must be placed in LAYERS, not fall to the package root."""
    top = {name.split(".")[1] for name in import_graph.modules() if name.count(".") >= 1}
    unplaced = sorted(t for t in top if _covering(f"modelport.{t}", [n for _, ns in LAYERS for n in ns]) == "")
    assert unplaced == []


def test_no_import_points_up_the_layers():
    new = {
        f"{source} -> {target} (line {edge.line}{', in a function' if edge.lazy else ''})"
        for (source, target), edge in upward_edges(import_graph.edges()).items()
        if (source, target) not in ALLOWED
    }
    assert sorted(new) == []


def test_no_import_cycle_beyond_the_allowed_edges():
    assert import_graph.cycles(graph_without_allowed(import_graph.edges())) == []


def test_every_allowed_exception_still_happens():
    assert stale_allowed() == []


def test_shims_only_re_export():
    new = {name: code for name, code in shims_with_code().items() if name not in SHIMS_WITH_CODE}
    assert new == {}


def test_every_listed_shim_with_code_still_has_code():
    assert stale_shims() == []


def test_the_graph_reader_sees_relative_and_function_level_imports():
    edges = {(e.source, e.target): e for e in import_graph.edges()}
    assert ("modelport.dataplane.plane", "modelport.errors") in edges  # ``from ..errors import ...``
    assert edges[("modelport.serving.server", "modelport.cli")].lazy
    assert import_graph.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
