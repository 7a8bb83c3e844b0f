"""The OpenAI-compatible routes against a real server, with the official ``openai`` client (sync,
async, streaming) and raw HTTP for the error shapes."""

from __future__ import annotations

import openai
import pytest

from ..helpers import server_in_thread
from ..streaming.conftest import wait_for
from .models import WORDS, AsyncToyLM, ToyEncoder, ToyLM


@pytest.fixture(scope="module")
def server():
    with server_in_thread([ToyLM("toy"), AsyncToyLM("atoy"), ToyLM("broken", fail_at=2), ToyEncoder()]) as server:
        yield server


@pytest.fixture
def client(server):
    with openai.OpenAI(base_url=f"http://127.0.0.1:{server.http_port}/openai/v1", api_key="unused", max_retries=0) as client:
        yield client


@pytest.mark.parametrize("model", ["toy", "atoy"])
def test_completion_greedy_stop_max_tokens_and_usage(client, model):
    done = client.completions.create(model=model, prompt="one two three", max_tokens=3, temperature=0)
    assert done.choices[0].text == "alpha beta gamma "
    assert done.choices[0].finish_reason == "length"
    assert (done.usage.prompt_tokens, done.usage.completion_tokens, done.usage.total_tokens) == (3, 3, 6)
    stopped = client.completions.create(model=model, prompt="x", max_tokens=50, temperature=0, stop=["delta", "zzz"])
    assert stopped.choices[0].text == "alpha beta gamma "
    assert stopped.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("model", ["toy", "atoy"])
def test_chat_streams_the_same_text_it_answers_whole(client, model):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    whole = client.chat.completions.create(model=model, messages=messages, max_tokens=8, seed=42, temperature=0.8)
    assert whole.object == "chat.completion" and whole.choices[0].message.role == "assistant"
    chunks = list(client.chat.completions.create(model=model, messages=messages, max_tokens=8, seed=42, temperature=0.8,
                                                 stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 8


def test_seeded_sampling_is_reproducible_and_n_gives_distinct_choices(client):
    def sample(seed):
        return client.completions.create(model="toy", prompt="p", max_tokens=10, temperature=1.0, top_p=0.9, seed=seed).choices[0].text

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)
    many = client.completions.create(model="toy", prompt="p", max_tokens=10, temperature=1.0, seed=7, n=3)
    assert [c.index for c in many.choices] == [0, 1, 2]
    assert many.choices[0].text == sample(7) and len({c.text for c in many.choices}) > 1
    assert many.usage.completion_tokens == 30


def test_completion_stream_ends_with_done(server):
    import httpx

    body = {"model": "toy", "prompt": "p", "max_tokens": 2, "temperature": 0, "stream": True}
    response = httpx.post(f"http://127.0.0.1:{server.http_port}/openai/v1/completions", json=body, timeout=30)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.endswith("data: [DONE]\n\n")


def test_embeddings_and_models(client, server):
    result = client.embeddings.create(model="encoder", input=["a b c", "d"])
    assert [d.embedding for d in result.data] == [[5.0, 3.0], [1.0, 1.0]]
    assert result.usage.prompt_tokens == 4
    assert sorted(m.id for m in client.models.list()) == ["atoy", "broken", "encoder", "toy"]
    assert client.models.retrieve("toy").id == "toy"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_v1_aliases_and_the_kserve_models_route(server):
    import httpx

    with openai.OpenAI(base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="x", max_retries=0) as v1:
        done = v1.chat.completions.create(model="toy", messages=[{"role": "user", "content": "hi"}], max_tokens=2, temperature=0)
        assert done.choices[0].message.content == "alpha beta "
        assert v1.embeddings.create(model="encoder", input="x").data[0].embedding == [1.0, 1.0]
    # /v1/models is KServe V1's list, not OpenAI's: the collision keeps KServe's shape.
    assert httpx.get(f"http://127.0.0.1:{server.http_port}/v1/models").json() == {"models": ["atoy", "broken", "encoder", "toy"]}


def test_openai_shaped_errors(client, server):
    import httpx

    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model="toy", prompt="x", temperature=3)
    assert info.value.body == {"message": "Invalid request: temperature: Input should be less than or equal to 2",
                               "type": "invalid_request_error", "param": "temperature", "code": None}
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert info.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError, match="does not serve embeddings"):
        client.embeddings.create(model="toy", input="x")
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="toy", messages=[])
    with pytest.raises(openai.BadRequestError, match="n: "):
        client.completions.create(model="toy", prompt="x", n=0)
    url = f"http://127.0.0.1:{server.http_port}/openai/v1"
    bad_json = httpx.post(url + "/completions", content=b"{nope", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.json()["error"]["type"] == "invalid_request_error"
    wrong_method = httpx.get(url + "/completions")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()
    assert httpx.get(url + "/nothing-here").json()["error"]["type"] == "not_found_error"
    bad_role = httpx.post(url + "/chat/completions", json={"model": "toy", "messages": [{"role": "wizard", "content": "x"}]})
    assert bad_role.status_code == 400 and bad_role.json()["error"]["param"] == "messages.0.role"


def test_a_failure_mid_stream_reaches_the_client(client):
    # The client reads no exception text (it is in the server log, under the request id it is given).
    with pytest.raises(openai.APIError, match="Model broken failed while serving the request; see the server log"):
        for _ in client.completions.create(model="broken", prompt="x", max_tokens=10, temperature=0, stream=True):
            pass
    with pytest.raises(openai.InternalServerError, match="Model broken failed while serving the request") as info:
        client.completions.create(model="broken", prompt="x", max_tokens=10, temperature=0)
    assert info.value.body["type"] == "server_error" and "toy broke" not in info.value.body["message"]


@pytest.mark.parametrize("kind", [ToyLM, AsyncToyLM])
async def test_async_client_streams_and_a_closed_stream_stops_generation(serve, kind):
    model = kind("slow", delay=0.02)
    server, _ = await serve([model])
    async with openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/openai/v1", api_key="x", max_retries=0) as client:
        done = await client.completions.create(model="slow", prompt="x", max_tokens=3, temperature=0)
        assert done.choices[0].text == "alpha beta gamma "
        model.closed.clear()
        produced_before = model.produced
        stream = await client.chat.completions.create(model="slow", messages=[{"role": "user", "content": "x"}],
                                                      max_tokens=100000, temperature=0, stream=True)
        seen = []
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                seen.append(chunk.choices[0].delta.content)
                if len(seen) == 3:
                    break
        await stream.close()
    assert seen == [w + " " for w in WORDS[:3]]
    await wait_for(model.closed.is_set, what="generation to stop after the client closed the stream")
    assert model.produced - produced_before <= 6
    await wait_for(lambda: server.dataplane.in_flight().get("slow") == 0, what="the request to be released")


async def test_a_whole_answer_to_a_stream_request_is_one_chunk(serve):
    from .models import WholeOnly

    server, client = await serve([WholeOnly()])
    response = await client.post("/openai/v1/completions", json={"model": "whole", "prompt": "x", "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in response.text.split("\n\n") if line]
    assert len(lines) == 2 and '"all at once"' in lines[0] and lines[1] == "data: [DONE]"
    listed = (await client.get("/openai/v1/models")).json()["data"]
    assert [m["id"] for m in listed] == ["whole"]


async def test_kserve_style_framed_chunks_pass_through_with_one_done(serve):
    from .models import KServeStyle

    server, client = await serve([KServeStyle()])
    async with openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/openai/v1", api_key="x", max_retries=0) as oa:
        chunks = [c async for c in await oa.completions.create(model="kserve-style", prompt="x", stream=True)]
    assert "".join(c.choices[0].text for c in chunks) == "one two "
    raw = await client.post("/openai/v1/completions", json={"model": "kserve-style", "prompt": "x", "stream": True})
    assert raw.text.count("[DONE]") == 1 and raw.text.endswith("data: [DONE]\n\n")


CHAT = [{"role": "user", "content": "x"}]
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}


@pytest.mark.parametrize("call, param", [
    (lambda c: c.chat.completions.create(model="toy", messages=CHAT, tools=[TOOL]), "tools"),
    (lambda c: c.chat.completions.create(model="toy", messages=CHAT, tool_choice="required"), "tool_choice"),
    (lambda c: c.chat.completions.create(model="toy", messages=CHAT, response_format={"type": "json_object"}), "response_format"),
    (lambda c: c.chat.completions.create(
        model="toy", messages=CHAT, response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}),
     "response_format"),
    (lambda c: c.chat.completions.create(model="toy", messages=CHAT, logprobs=True, top_logprobs=2), "logprobs"),
    (lambda c: c.completions.create(model="toy", prompt="x", logprobs=2), "logprobs"),
    (lambda c: c.completions.create(model="toy", prompt="x", echo=True), "echo"),
    (lambda c: c.completions.create(model="toy", prompt="x", suffix="end"), "suffix"),
    (lambda c: c.chat.completions.create(model="atoy", messages=CHAT, tools=[TOOL], stream=True), "tools"),
])
def test_parameters_a_model_cannot_honour_are_a_400_naming_them(client, call, param):
    with pytest.raises(openai.BadRequestError) as info:
        call(client)
    assert info.value.body["param"] == param and param in info.value.body["message"]
    assert info.value.body["type"] == "invalid_request_error"


def test_parameters_that_change_nothing_are_accepted(client):
    done = client.chat.completions.create(model="toy", messages=CHAT, max_tokens=2, temperature=0,
                                          response_format={"type": "text"}, logprobs=False, tool_choice="none")
    assert done.choices[0].message.content == "alpha beta "


@pytest.mark.parametrize("kind", [ToyLM, AsyncToyLM])
async def test_every_chunk_of_a_stream_has_the_same_created(serve, kind):
    """A stream that runs over a second boundary (30 tokens, 50 ms apart) still has one `created`."""
    server, _ = await serve([kind("slow", delay=0.05)])
    async with openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/openai/v1", api_key="x", max_retries=0) as oa:
        stream = await oa.completions.create(model="slow", prompt="x", max_tokens=30, temperature=0, stream=True,
                                             stream_options={"include_usage": True})
        completion = [chunk async for chunk in stream]
        stream = await oa.chat.completions.create(model="slow", messages=CHAT, max_tokens=30, temperature=0, stream=True,
                                                  stream_options={"include_usage": True})
        chat = [chunk async for chunk in stream]
    for chunks in (completion, chat):
        assert len(chunks) > 30 and chunks[-1].usage is not None
        assert {c.created for c in chunks} == {chunks[0].created}
        assert {c.id for c in chunks} == {chunks[0].id}
