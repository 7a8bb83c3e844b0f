"""Zero-error model updates from the folder: poll mode reloads a changed model under load, a broken
new version leaves the old one serving with the reason in the index, warmup runs before readiness."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import time
import uuid
from pathlib import Path

import pytest

from .models import X, Versioned, with_settings

MODEL_PY = '''
import asyncio
import numpy as np
from modelport import InferOutput, InferResponse, Model


class Scaled(Model):
    async def load(self):
        extra = self.settings.parameters.extra
        await asyncio.sleep(extra.get("load_delay", 0))
        if extra.get("broken"):
            raise RuntimeError("weights are corrupt")
        self.scale = extra["scale"]
        self.ready = True
        return True

    async def predict(self, payload, headers=None):
        await asyncio.sleep(0.002)
        y = payload.inputs[0].as_numpy().astype(np.float32).sum(axis=-1) * self.scale
        out = InferOutput("y", list(y.shape), "FP32")
        out.set_data_from_numpy(y, binary_data=False)
        return InferResponse(payload.id, self.name, [out])
'''


def write_model(folder: Path, module: str, **extra) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / f"{module}.py").exists():
        (folder / f"{module}.py").write_text(MODEL_PY)
    settings = {"name": "m", "implementation": f"{module}.Scaled", "parameters": {"extra": {"load_delay": 0.05, **extra}}}
    tmp = folder / "model-settings.json.tmp"
    tmp.write_text(json.dumps(settings))
    tmp.replace(folder / "model-settings.json")  # atomic, as the README advises


async def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.fixture
def module():
    return f"scaled_{uuid.uuid4().hex[:8]}"


async def _load(client, stop, errors, answers):
    while not stop.is_set() and len(errors) < 100:
        try:
            r = await client.post("/v2/models/m/infer", json=X)
            if r.status_code != 200:
                errors.append(r.text)
            else:
                answers[r.json()["outputs"][0]["data"][0]] += 1
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def load_running(client, answers, n=6):
    """Requests in a loop from n tasks; yields the error list; the tasks end even if the test fails."""
    stop, errors = asyncio.Event(), []
    workers = [asyncio.ensure_future(_load(client, stop, errors, answers)) for _ in range(n)]
    try:
        yield errors
    finally:
        stop.set()
        await asyncio.gather(*workers)


async def test_poll_mode_reloads_a_changed_model_under_load_with_zero_errors(serve, tmp_path, module):
    write_model(tmp_path / "m", module, scale=1.0)
    server, client = await serve(model_repository=str(tmp_path), model_control_mode="poll", poll_interval=0.05)
    answers = collections.Counter()
    async with load_running(client, answers) as errors:
        for scale in (2.0, 3.0, 4.0):
            write_model(tmp_path / "m", module, scale=scale)

            async def answered(scale=scale):
                return answers[3.0 * scale] > 0

            await wait_for(answered)
    assert errors == []
    assert set(answers) == {3.0, 6.0, 9.0, 12.0}


async def test_broken_new_version_keeps_the_old_one_serving(serve, tmp_path, module, caplog):
    write_model(tmp_path / "m", module, scale=1.0)
    server, client = await serve(model_repository=str(tmp_path), model_control_mode="poll", poll_interval=0.05)
    poller = server._poller
    write_model(tmp_path / "m", module, scale=1.0, broken=True)

    async def reported():
        index = (await client.post("/v2/repository/index", json={})).json()
        return "weights are corrupt" in index[0]["reason"]

    await wait_for(reported)
    index = (await client.post("/v2/repository/index", json={})).json()
    assert index[0]["state"] == "READY" and "previous load serves on" in index[0]["reason"]
    r = await client.post("/v2/models/m/infer", json=X)
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [3.0]
    assert "weights are corrupt" in caplog.text
    # Unreadable settings: the same (the old load serves), then a good version replaces it.
    (tmp_path / "m" / "model-settings.json").write_text("{not json")
    scans = poller.scans

    async def scanned():
        return poller.scans > scans + 1

    await wait_for(scanned)
    assert (await client.post("/v2/models/m/infer", json=X)).status_code == 200
    write_model(tmp_path / "m", module, scale=5.0)

    async def fixed():
        r = await client.post("/v2/models/m/infer", json=X)
        return r.json()["outputs"][0]["data"] == [15.0]

    await wait_for(fixed)
    index = (await client.post("/v2/repository/index", json={})).json()
    assert index[0]["state"] == "READY" and index[0]["reason"] == ""


async def test_poll_mode_loads_new_and_unloads_removed_models(serve, tmp_path, module):
    write_model(tmp_path / "m", module, scale=1.0)
    server, client = await serve(model_repository=str(tmp_path), model_control_mode="poll", poll_interval=0.05)
    (tmp_path / "m" / "model-settings.json").unlink()

    async def gone():
        return (await client.post("/v2/models/m/infer", json=X)).status_code == 503

    await wait_for(gone)
    write_model(tmp_path / "m", module, scale=2.0)

    async def back():
        r = await client.post("/v2/models/m/infer", json=X)
        return r.status_code == 200 and r.json()["outputs"][0]["data"] == [6.0]

    await wait_for(back)


async def test_admin_load_of_a_changed_folder_model_swaps_without_errors(serve, tmp_path, module):
    write_model(tmp_path / "m", module, scale=1.0)
    server, client = await serve(model_repository=str(tmp_path))  # poll mode off: explicit reloads
    answers = collections.Counter()
    async with load_running(client, answers) as errors:
        for scale in (2.0, 3.0):
            write_model(tmp_path / "m", module, scale=scale)
            assert (await client.post("/v2/repository/models/m/load")).status_code == 200
        write_model(tmp_path / "m", module, scale=9.0, broken=True)
        r = await client.post("/v2/repository/models/m/load")
        assert r.status_code == 500 and "weights are corrupt" in r.json()["error"]
        before = answers[9.0]

        async def still_serving():
            return answers[9.0] > before

        await wait_for(still_serving)
    assert errors == []
    assert set(answers) <= {3.0, 6.0, 9.0} and answers[9.0] > 0


async def test_warmup_runs_before_the_model_is_ready(serve):
    server, client = await serve([Versioned("other", "1")])
    model = with_settings(Versioned("w", "1"), inputs=[{"name": "x", "datatype": "FP32", "shape": [-1, 2]}], warmup={"count": 3})
    model.gate = asyncio.Event()  # warmup requests wait here
    loading = asyncio.ensure_future(server.repository.load_model(model, model.settings))

    async def warming():
        return model.calls >= 1

    await wait_for(warming)
    assert (await client.get("/v2/models/w/ready")).status_code == 503
    assert (await client.post("/v2/models/w/infer", json=X)).status_code == 503
    model.gate.set()
    entry = await loading
    assert entry.state.value == "READY" and model.calls == 3
    assert (await client.get("/v2/models/w/ready")).status_code == 200


async def test_warmup_from_declared_requests_and_a_failing_warmup(serve):
    good = with_settings(Versioned("g", "1"), warmup=[X, X])
    bad = with_settings(Versioned("b", "1", fail=True), warmup=[X])
    server, client = await serve([good, bad])
    assert good.calls == 2
    index = {m["name"]: m for m in (await client.post("/v2/repository/index", json={})).json()}
    assert index["g"]["state"] == "READY"
    assert index["b"]["state"] == "FAILED" and "broken" in index["b"]["reason"]


def test_routing_settings_from_env_flags_and_their_checks():
    from modelport.cli import build_parser
    from modelport.settings import SettingsError, load_server_settings, model_settings_from_dict

    s = load_server_settings(env={"MODELPORT_MODEL_CONTROL_MODE": "poll", "MODELPORT_POLL_INTERVAL": "0.5",
                                  "MODELPORT_MAX_SHADOW_REQUESTS": "3"})
    assert (s.model_control_mode, s.poll_interval, s.max_shadow_requests) == ("poll", 0.5, 3)
    args = build_parser().parse_args(["serve", "--model-control-mode", "poll", "--poll-interval", "2"])
    assert (args.model_control_mode, args.poll_interval) == ("poll", 2.0)
    for env in ({"MODELPORT_MODEL_CONTROL_MODE": "watch"}, {"MODELPORT_POLL_INTERVAL": "0"}):
        with pytest.raises(SettingsError):
            load_server_settings(env=env)
    for bad in ({"traffic": [1]}, {"graph": "x"}, {"warmup": 3}):
        with pytest.raises(SettingsError):
            model_settings_from_dict({"name": "m", **bad})
