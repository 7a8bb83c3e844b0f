"""Residency over a model's life: deadlines while a model loads, poll mode registering and reloading,
an explicit load being the most recently used, settings that cannot be used."""

from __future__ import annotations

import asyncio
import json

import pytest

from modelport.repository.residency import parse_size
from modelport.settings import SettingsError, load_server_settings

from .conftest import counter, index_of, sized_model, v2_body, wait_for


async def test_a_deadline_ends_the_wait_not_the_load(serve, tmp_path):
    folder = tmp_path / "deadline"
    sized_model(folder, "slow-load", load_delay=1.0)
    server, client = await serve(model_repository=str(folder), max_loaded_models=2)
    r = await client.post("/v2/models/slow-load/infer", json=v2_body(), headers={"x-request-timeout": "0.1"})
    assert r.status_code == 504 and "did not finish loading" in r.json()["error"]
    # The load goes on; the next request waits for the same one (never a second load).
    r = await client.post("/v2/models/slow-load/infer", json=v2_body())
    assert r.status_code == 200, r.text
    assert counter(folder).loads == 1


async def test_poll_mode_registers_new_models_and_reloads_changed_ones(serve, tmp_path):
    folder = tmp_path / "poll"
    sized_model(folder, "first", size=100)
    server, client = await serve(model_repository=str(folder), max_loaded_models=2, model_control_mode="poll",
                                 poll_interval=0.1)
    assert (await client.post("/v2/models/first/infer", json=v2_body())).status_code == 200
    sized_model(folder, "second", size=200)  # a new model appears: registered, not loaded
    await wait_for(lambda: index_of(server).get("second", {}).get("state") == "REGISTERED")
    assert counter(folder).loads == 1
    assert (await client.post("/v2/models/second/infer", json=v2_body())).status_code == 200
    # A changed resident model is loaded beside the serving one and swapped in; it stays resident.
    settings = json.loads((folder / "first" / "model-settings.json").read_text())
    settings["parameters"]["extra"]["size"] = 300
    (folder / "first" / "model-settings.json").write_text(json.dumps(settings))
    await wait_for(lambda: counter(folder).loads == 3)
    await wait_for(lambda: index_of(server)["first"]["state"] == "READY")
    assert (await client.post("/v2/models/first/infer", json=v2_body())).status_code == 200
    resident = [n for n, m in index_of(server).items() if m["state"] in ("READY", "LOADING")]
    assert len(resident) <= 2


async def test_an_explicit_load_is_the_most_recently_used(serve, tmp_path):
    folder = tmp_path / "recent"
    for name in ("a", "b", "c"):
        sized_model(folder, name)
    server, client = await serve(model_repository=str(folder), max_loaded_models=2)
    assert (await client.post("/v2/models/a/infer", json=v2_body())).status_code == 200
    assert (await client.post("/v2/repository/models/b/load")).status_code == 200
    assert (await client.post("/v2/models/c/infer", json=v2_body())).status_code == 200  # evicts a, not b
    states = {n: m["state"] for n, m in index_of(server).items()}
    assert states == {"a": "EVICTED", "b": "READY", "c": "READY"}


def test_sizes_and_bad_settings():
    assert parse_size("2GiB") == 2 * 1024**3 and parse_size("512MB") == 512 * 10**6 and parse_size(1000) == 1000
    assert parse_size("1.5k") == 1500 and parse_size(None) == 0
    for bad in ("lots", "-1GiB", "2 parsecs", True):
        with pytest.raises(SettingsError, match="memory_budget"):
            load_server_settings(env={}, overrides={"memory_budget": bad})
    with pytest.raises(SettingsError, match="max_concurrent_loads"):
        load_server_settings(env={}, overrides={"max_concurrent_loads": 0})
    with pytest.raises(SettingsError, match="max_loaded_models"):
        load_server_settings(env={}, overrides={"max_loaded_models": -2})
    s = load_server_settings(env={"MODELPORT_MEMORY_BUDGET": "64MiB", "MODELPORT_MAX_LOADED_MODELS": "10"})
    assert parse_size(s.memory_budget) == 64 * 1024**2 and s.max_loaded_models == 10


async def test_a_model_setting_pinned_must_be_a_boolean(serve, tmp_path):
    folder = tmp_path / "badpin"
    model_dir = sized_model(folder, "x")
    settings = json.loads((model_dir / "model-settings.json").read_text())
    settings["pinned"] = "sometimes"
    (model_dir / "model-settings.json").write_text(json.dumps(settings))
    with pytest.raises(SettingsError, match="pinned"):
        await serve(model_repository=str(folder), max_loaded_models=2)


async def test_concurrent_first_requests_across_doors_share_one_load(serve, tmp_path):
    folder = tmp_path / "shared"
    sized_model(folder, "m", load_delay=0.3)
    server, client = await serve(model_repository=str(folder), max_loaded_models=2)
    calls = [client.post("/v2/models/m/infer", json=v2_body()) for _ in range(5)]
    calls += [client.post("/v2/models/m/infer_stream", json=v2_body()) for _ in range(3)]
    answers = await asyncio.gather(*calls)
    assert [a.status_code for a in answers] == [200] * 8
    assert counter(folder).loads == 1


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # ray's own imports (pydantic v1 style)
def test_ray_mode_refuses_the_limits():
    pytest.importorskip("ray")
    from modelport.deploy.ray_serve import build_app
    from modelport.errors import StartupError
    from modelport.settings import ServerSettings

    for setting in ({"memory_budget": "1GiB"}, {"max_loaded_models": 3}):
        with pytest.raises(StartupError, match=f"{next(iter(setting))}.*cannot be used with Ray"):
            build_app(settings=ServerSettings(**setting))
