"""The REST router compiled from the declaration: exact matches only, literals before parameters,
KServe's "{model}:verb" segments, 404 vs 405, and a bounded memo."""

from __future__ import annotations

import pytest

from modelport import doors
from modelport.doors import RestRouter, RouteMiss


@pytest.fixture(scope="module")
def router():
    return RestRouter((d, d.name) for d in doors.REST)


def _name(router, method, path):
    door, handler, params = router.match(method, path)
    assert handler == door.name
    return door.name, params


def test_routes_match_their_declared_door(router):
    assert _name(router, "POST", "/v2/models/iris/infer") == ("v2.infer", {"model_name": "iris"})
    assert _name(router, "POST", "/v2/models/iris/versions/3/infer_stream") == (
        "v2.infer_stream.version", {"model_name": "iris", "model_version": "3"})
    assert _name(router, "POST", "/v1/models/iris:predict") == ("v1.predict", {"model_name": "iris"})
    assert _name(router, "GET", "/v1/models/iris") == ("v1.model_ready", {"model_name": "iris"})
    assert _name(router, "GET", "/v2/models/stats") == ("v2.stats", {})
    # A model named "stats" keeps every route but the aggregate one (the literal fails, the parameter is tried).
    assert _name(router, "GET", "/v2/models/stats/ready") == ("v2.model_ready", {"model_name": "stats"})
    assert _name(router, "HEAD", "/v2/health/ready")[0] == "v2.ready"
    assert _name(router, "POST", "/v1/chat/completions")[0] == "openai.chat_completions.v1"


@pytest.mark.parametrize("path", ["/v1/models/", "/v2/", "/v2/models/", "/v2/models//infer", "/v2/models/iris/infer/",
                                  "/v1/models/:predict", "/v1/models/iris:frobnicate", "/v2/models/iris/versions//infer",
                                  "/openai/v1/nothing", "/v2/repository/models/iris", "/nothing", ""])
def test_anything_not_declared_is_a_miss(router, path):
    with pytest.raises(RouteMiss) as info:
        router.match("POST", path)
    assert info.value.allowed == ()


def test_a_wrong_method_names_the_allowed_ones(router):
    with pytest.raises(RouteMiss) as info:
        router.match("GET", "/v2/models/iris/infer")
    assert info.value.allowed == ("POST",)
    with pytest.raises(RouteMiss) as info:
        router.match("DELETE", "/v2/health/live")
    assert info.value.allowed == ("GET",)


def test_the_memo_is_bounded_and_answers_like_a_walk(router):
    for i in range(doors._MEMO_SIZE + 10):
        assert router.match("POST", f"/v2/models/m{i}/infer")[2] == {"model_name": f"m{i}"}
    assert len(router._memo) <= doors._MEMO_SIZE
    assert router.match("POST", "/v2/models/m3/infer")[2] == {"model_name": "m3"}


def test_declarations_are_checked_when_made():
    with pytest.raises(ValueError, match="no \\{model_name\\}"):
        doors.Door("x", "GET", "/x", doors.READ, "path")
    with pytest.raises(ValueError, match="only a public door"):
        doors.Door("x", "GET", "/x", doors.READ, protected_by="auth_health")
    with pytest.raises(ValueError, match="name\\}:verb"):
        RestRouter([(doors.Door("x", "GET", "/a/{model_name}predict", doors.READ, "path"), None)])
    # The tables themselves: unique names, unique (method, path), every door with a summary.
    every = [*doors.REST, *doors.CONSOLE, *doors.MLFLOW, *doors.GRPC]
    assert len({d.name for d in every}) == len(every)
    assert len({(d.method, d.path) for d in every}) == len(every)
    assert all(d.summary for d in every)
