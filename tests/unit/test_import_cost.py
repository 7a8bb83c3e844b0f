"""``import modelport`` stays light: the server stack, gRPC and numpy load when first used (PEP 562).

Checked by what a fresh interpreter has imported (behaviour), not by how long it took (timing).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import modelport

_PROBE = textwrap.dedent(
    """
    import json, sys
    before = set(sys.modules)
    import modelport
    for name in sys.argv[1:]:
        getattr(modelport, name)
    print(json.dumps(sorted(set(sys.modules) - before)))
    """
)

SERVER_STACK = {"grpc", "uvicorn", "starlette", "httptools", "h11", "prometheus_client", "httpx", "pydantic", "orjson"}


def loaded_after(*names: str) -> list[str]:
    """The modules a fresh interpreter imports for ``import modelport`` plus the names asked for."""
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", _PROBE, *names], check=True, capture_output=True, text=True, timeout=60
    )
    return json.loads(proc.stdout)


def tops(modules: list[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_import_modelport_loads_only_the_package_and_its_version():
    loaded = loaded_after()
    assert sorted(m for m in loaded if m.startswith("modelport")) == ["modelport", "modelport._version"]
    assert tops(loaded) & (SERVER_STACK | {"numpy"}) == set()
    assert len(loaded) < 10, loaded  # the package, its version, nothing that drags a stack in


def test_subclassing_model_does_not_load_the_server():
    loaded = loaded_after("Model", "InferRequest", "InvalidInput")
    assert "modelport.model" in loaded and "modelport.types" in loaded
    assert tops(loaded) & SERVER_STACK == set()
    assert not any(m.startswith(("modelport.serving", "modelport.transports", "modelport.controls")) for m in loaded)


def test_the_server_and_the_clients_load_when_asked_for():
    server = loaded_after("ModelServer")
    assert "modelport.serving.server" in server and "uvicorn" in tops(server)
    client = loaded_after("InferenceRESTClient")
    assert "modelport.client" in client and "httpx" in tops(client)
    assert "modelport.serving.server" not in client  # the client never pulls in the server side


def test_every_lazy_name_resolves_to_the_object_its_module_defines():
    import importlib

    for name, module in modelport._LAZY.items():
        assert getattr(modelport, name) is getattr(importlib.import_module(module), name), name
    assert set(modelport._LAZY) | {"__version__"} == set(modelport.__all__)
    assert set(modelport.__all__) <= set(dir(modelport))
