"""The authorization matrix (tests/doors/test_matrix.py) under ``serve --ray``: every REST route and every
gRPC method × {no key, infer key, key scoped to another model, admin key}, against ONE Ray-served server
(one cluster, one deployment) with the door tests' keys and models.

What a caller gets is the one-server answer (``expected`` of test_matrix.py, from the declaration) changed
only by Ray's own rules, each derived from modelport/deploy/ray_serve.py rather than listed by route:
- a repository or routing change is refused (403, "fixed when the application is deployed"), after auth:
  whichever dataplane actions ``_refuse_changes`` makes refuse;
- a setting Ray does not honour (``UNDER_RAY``) keeps its default: system shared memory is off (501);
- Ray's gRPC proxy serves only the service ``GRPC_SERVICER`` registers (Triton's GRPCInferenceService):
  MLServer's repository service and grpc.health are UNIMPLEMENTED for every caller, no key looked at.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import grpc
import grpc.aio
import httpx
import pytest

from modelport import doors
from modelport.dataplane.plane import DataPlane
from modelport.doors import ADMIN
from modelport.errors import PermissionDenied
from modelport.repository.entries import ModelRepository
from modelport.settings import ServerSettings

from ..doors.conftest import CALLERS, KEYS, Served, model_folder
from ..doors.test_matrix import GRPC_CODES, REST_SAMPLES, _grpc_code, _rest_status, expected
from .ray_cluster import RAY_TEST_MARKS, RayNode, driver, unused_port

with warnings.catch_warnings():  # Ray's own imports warn about its dependencies: not ours to fix
    warnings.simplefilter("ignore")
    from modelport.deploy import ray_serve
    from modelport.ray import run

pytestmark = RAY_TEST_MARKS

REPO = Path(__file__).resolve().parents[2]
# Model instances do not pickle (locks), so the door tests' in-code models join the folder as code that a
# replica imports: toy (ToyLM), encoder (ToyEncoder) and scorer (an MLflow scorer), as on one server.
IN_CODE = {"toy": "tests.openai.models.ToyLM", "encoder": "tests.openai.models.ToyEncoder",
           "scorer": "tests.doors.conftest.Scorer"}

FIXED, OFF = 403, 501  # a change of the deployed models; a setting Ray keeps at its (off) default


async def _fixed_on_ray(door: doors.Door, body) -> bool:
    """Whether ``_refuse_changes`` refuses what this door does: an admin door naming one model acts through
    the dataplane method its name ends with (repository.load -> load, grpc.RepositoryModelUnload -> unload);
    that method, on a dataplane ray_serve has fixed, is called with the sample's body and must refuse."""
    if door.kind != ADMIN or not (door.model == "path" or (door.field or "").endswith("model_name")):
        return False
    action = door.name.rsplit(".", 1)[-1].removeprefix("RepositoryModel").lower()
    dataplane = DataPlane(ModelRepository())
    ray_serve._refuse_changes(dataplane)
    try:
        await getattr(dataplane, action)("ver", *([body] if body else []))
    except PermissionDenied as exc:
        return str(exc) == ray_serve._FixedModels.REASON
    except Exception:  # noqa: BLE001 - anything else (a read, with no router here) is not Ray's refusal
        return False
    return False


def _shared_memory_off_on_ray() -> bool:
    """system_shared_memory is not honoured under Ray (UNDER_RAY), so it stays at its default."""
    how = ray_serve.UNDER_RAY["system_shared_memory"]
    return how not in ("replica", "ray") and ServerSettings().system_shared_memory == "off"


async def ray_expected(door: doors.Door, caller: str, ok, body=None):
    """The one-server answer (test_matrix.expected, repository API on, probes open), as Ray changes it."""
    if door in doors.GRPC and not _through_rays_grpc_proxy(door):
        return OFF  # UNIMPLEMENTED from Ray's proxy, for every caller: no key is looked at
    want = expected(door, caller, ok)
    if want != ok or caller != "admin":  # auth and scopes come first, on Ray as on one server
        return want
    if door.model == "every" and _shared_memory_off_on_ray():  # the shared-memory doors (declared "every")
        return OFF
    if await _fixed_on_ray(door, body):
        return FIXED
    return ok


SERVICE = ray_serve.GRPC_SERVICER.rsplit(".add_", 1)[1].removesuffix("Servicer_to_server")  # GRPCInferenceService


def _through_rays_grpc_proxy(door: doors.Door) -> bool:
    """Ray's gRPC proxy serves only the service GRPC_SERVICER adds (Triton's); MLServer's repository
    service and grpc.health are not there at all."""
    return door.path.split("/")[1].rsplit(".", 1)[-1] == SERVICE


@pytest.fixture(scope="module")
def ray_served(tmp_path_factory):
    """One cluster, one deployment: the door tests' folder and models, their keys, the console, gRPC."""
    folder = Path(model_folder(tmp_path_factory.mktemp("ray-matrix")))
    for name, dotted in IN_CODE.items():
        module, cls = dotted.rsplit(".", 1)
        (folder / name).mkdir()
        (folder / name / "in_code.py").write_text(f"import sys\nsys.path.insert(0, {str(REPO)!r})\nfrom {module} import {cls}\n")
        (folder / name / "model-settings.json").write_text(json.dumps({"name": name, "implementation": f"in_code.{cls}"}))
    node = RayNode.head("matrix")
    try:
        with driver(node):
            http_port, grpc_port = unused_port(), unused_port()
            settings = ServerSettings(host="0.0.0.0", http_port=http_port, grpc_port=grpc_port, api_keys=KEYS,
                                      enable_ui=True)
            run(str(folder), settings=settings, blocking=False, ray_options={"ray_actor_options": {"num_cpus": 0.1}})
            yield http_port, grpc_port
    finally:
        node.stop()


@pytest.fixture
async def served(ray_served):
    http_port, grpc_port = ray_served
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=60) as http:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")
        try:
            yield Served(http, channel)
        finally:
            await channel.close()


async def test_rest_matrix_under_ray(served):
    wrong = []
    for door in [*doors.REST, *doors.CONSOLE, *doors.MLFLOW]:  # in declaration order, as test_matrix
        path, body, ok = REST_SAMPLES[door.name]
        for caller in ("none", "infer", "scoped", "admin"):
            want = await ray_expected(door, caller, ok, body)
            status, text = await _rest_status(served, door, CALLERS[caller])
            if status != want:
                wrong.append(f"{door.method} {door.path} ({door.kind}) as {caller}: {status}, expected {want}: {text}")
    assert not wrong, "\n".join(wrong)
    # The refusals left the deployed models as they were.
    answer = await served.http.post("/v2/models/spare/infer", json=REST_SAMPLES["v2.infer"][1],
                                    headers={"x-api-key": CALLERS["infer"]})
    assert answer.status_code == 200, answer.text


async def test_grpc_matrix_under_ray(served):
    from ..doors.test_matrix import GRPC_SAMPLES

    # Ray's proxy registers every method of the service and calls the replica's method of that name: one the
    # replica lacks answers INTERNAL with a replica traceback, to any caller.
    missing = [d.path for d in doors.GRPC if _through_rays_grpc_proxy(d)
               and not callable(getattr(ray_serve.ModelportReplica, d.path.rsplit("/", 1)[1], None))]
    assert not missing, f"ModelportReplica must define every method Ray's gRPC proxy forwards: {missing}"
    codes = {**GRPC_CODES, OFF: grpc.StatusCode.UNIMPLEMENTED}
    wrong = []
    for door in [d for d in doors.GRPC if d.name in GRPC_SAMPLES]:
        for caller in ("none", "infer", "scoped", "admin"):
            want = codes[await ray_expected(door, caller, 200)]
            code, details = await _grpc_code(served, door, CALLERS[caller])
            if code != want:
                wrong.append(f"{door.path} ({door.kind}) as {caller}: {code.name}, expected {want.name}: {details}")
    assert not wrong, "\n".join(wrong)
