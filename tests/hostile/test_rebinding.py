"""DNS rebinding (issue 19): a page whose own name resolves to the server sends Origin and Host both
foreign, so the Origin-equals-Host check passes. Without api_keys, every door declared admin refuses
such a browser request unless Host is loopback, the server's address, or in ``allowed_hosts``."""

from __future__ import annotations

import json

import pytest

from modelport import doors
from modelport.controls.origin import HostRule
from modelport.settings import SettingsError

X = {"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 2.0]}
UNLOAD = "/v2/repository/models/spare/unload"


@pytest.fixture
def models(tmp_path):
    for name in ("sum", "spare"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model-settings.json").write_text(
            json.dumps({"name": name, "implementation": "tests.fixture_models.SumModel"}))
    return str(tmp_path)


def browser(host: str, port: int) -> dict:
    """What a page at http://host:port sends to the server it believes it came from."""
    return {"host": f"{host}:{port}", "origin": f"http://{host}:{port}", "content-type": "application/json"}


async def spare_ready(client) -> bool:
    return (await client.get("/v2/models/spare/ready")).status_code == 200


async def test_rebinding_attack_is_refused_and_normal_clients_still_unload(serve, models):
    server, client = await serve(model_repository=models)
    port = server.http_port
    r = await client.post(UNLOAD, headers=browser("evil.example", port), content=b"{}")
    assert r.status_code == 403 and "allowed_hosts" in r.json()["error"], r.text
    assert await spare_ready(client)  # the refused unload did nothing
    # Every door declared admin has the rule, a GET one too (derived from the declaration).
    for door in doors.REST:
        if door.kind == doors.ADMIN and "{" not in door.path:
            r = await client.request(door.method, door.path, headers=browser("evil.example", port), content=b"{}")
            assert r.status_code == 403 and "allowed_hosts" in r.json()["error"], (door.name, r.text)
    # A client that is not a browser (no Origin), whatever its Host: unaffected.
    assert (await client.post(UNLOAD, headers={"host": f"models.internal:{port}"})).status_code == 200
    assert not await spare_ready(client)
    assert (await client.post("/v2/repository/models/spare/load")).status_code == 200
    # A page served from a loopback name or address (the console, say): allowed.
    for host in ("127.0.0.1", "localhost"):
        assert (await client.post(UNLOAD, headers=browser(host, port), content=b"{}")).status_code == 200, host
        assert (await client.post("/v2/repository/models/spare/load", headers=browser(host, port))).status_code == 200
    r = await client.post("/v2/models/sum/infer", json={"inputs": [X]})
    assert r.status_code == 200, r.text


async def test_allowed_hosts_lets_a_listed_host_through(serve, models):
    server, client = await serve(model_repository=models, allowed_hosts="models.example.com, other.example")
    port = server.http_port
    assert (await client.post(UNLOAD, headers=browser("evil.example", port), content=b"{}")).status_code == 403
    assert await spare_ready(client)
    r = await client.post(UNLOAD, headers=browser("Models.Example.COM", port), content=b"{}")
    assert r.status_code == 200, r.text
    assert not await spare_ready(client)


async def test_allowed_hosts_star_allows_any(serve, models):
    server, client = await serve(model_repository=models, allowed_hosts=["*"])
    r = await client.post(UNLOAD, headers=browser("evil.example", server.http_port), content=b"{}")
    assert r.status_code == 200, r.text


async def test_with_api_keys_the_admin_key_suffices(serve, models):
    keys = [{"key": "adm-key", "name": "ops", "scopes": ["admin"]}, {"key": "inf-key", "name": "app", "scopes": ["infer"]}]
    server, client = await serve(model_repository=models, api_keys=keys)
    attack = browser("evil.example", server.http_port)
    assert (await client.post(UNLOAD, headers=attack, content=b"{}")).status_code == 401
    assert (await client.post(UNLOAD, headers={**attack, "x-api-key": "inf-key"}, content=b"{}")).status_code == 403
    assert await spare_ready(client)
    r = await client.post(UNLOAD, headers={**attack, "x-api-key": "adm-key"}, content=b"{}")
    assert r.status_code == 200, r.text


def test_host_rule():
    rule = HostRule(["models.example.com"], "10.1.2.3")
    allowed = ["localhost:8080", "LOCALHOST", "a.localhost", "127.0.0.1:1", "127.9.9.9", "[::1]:8080",
               "models.example.com:443", "models.example.com.", "10.1.2.3:8080"]
    for host in allowed:
        rule.check({"origin": "http://x", "host": host}, None)
    for host in ("evil.example", "models.example.com.evil.example", "10.1.2.4", "", "[bad", "0.0.0.0"):
        with pytest.raises(Exception, match="allowed_hosts"):
            rule.check({"origin": "http://x", "host": host}, None)
    # The address the connection arrived at counts as a literal only (a name never does).
    wild = HostRule(None, "0.0.0.0")
    wild.check({"origin": "http://x", "host": "192.168.1.5:8080"}, "192.168.1.5")
    with pytest.raises(Exception, match="allowed_hosts"):
        wild.check({"origin": "http://x", "host": "0.0.0.0:8080"}, "192.168.1.5")
    wild.check({"host": "evil.example"}, None)  # no Origin: not a browser
    for bad in (["http://models.example.com/"], ["user@host"], [":80"], 5):
        with pytest.raises(SettingsError, match="allowed_hosts"):
            HostRule(bad)


def test_allowed_hosts_is_validated_at_start_up():
    from modelport.serving.server import ModelServer

    with pytest.raises(SettingsError, match="allowed_hosts"):
        ModelServer(http_port=0, enable_grpc=False, allowed_hosts="https://models.example.com/")
