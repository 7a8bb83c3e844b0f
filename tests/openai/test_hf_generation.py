"""The Hugging Face runtime as a text generator and an embedder, on real sockets: a tiny random GPT-2
and a tokenizer trained at test time (tests/openai/tiny_lm.py); nothing is downloaded."""

from __future__ import annotations

import asyncio
import json
import os
import shutil

import httpx
import openai
import pytest

from ..e2e.test_runtimes_rest import tiny_bert_folder
from ..helpers import server_in_thread
from ..streaming.conftest import wait_for
from .tiny_lm import build_tiny_lm

pytest.importorskip("torch")
pytest.importorskip("transformers")
PROMPTS = ["hello world", "the quick brown fox", "a model server", "user: hi"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    os.environ["HF_HUB_OFFLINE"] = "1"
    root = tmp_path_factory.mktemp("generative")
    build_tiny_lm(root / "lm")
    shutil.copytree(root / "lm", root / "lm-plain")
    (root / "lm" / "model-settings.json").write_text(json.dumps({"name": "lm", "implementation": "huggingface"}))
    (root / "lm-plain" / "model-settings.json").write_text(json.dumps(
        {"name": "lm-plain", "implementation": "huggingface", "parameters": {"extra": {"continuous_batching": False}}}))
    tiny_bert_folder(root / "embedder", classifier=False)
    (root / "embedder" / "model-settings.json").write_text(json.dumps({"name": "embedder"}))
    return root


def reference(folder, prompt, max_new_tokens):
    """What transformers' own greedy generate() makes of the prompt."""
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True).eval()
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.eos_token_id)
    new = out[0, ids.shape[1]:].tolist()
    if tokenizer.eos_token_id in new:
        new = new[: new.index(tokenizer.eos_token_id)]
    return tokenizer.decode(new, skip_special_tokens=True).rstrip("\ufffd")


@pytest.fixture(scope="module")
def hf_server(repo):
    """One server (in its own thread and loop) for the module: loading the models is the slow part."""
    with server_in_thread(model_repository=str(repo), enable_grpc=True) as server:
        yield server


@pytest.fixture
async def served(hf_server):
    server = hf_server
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=60)
    oa = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/openai/v1", api_key="x", max_retries=0, timeout=60)
    yield server, client, oa
    await oa.close()
    await client.aclose()


async def test_greedy_generation_matches_transformers_generate_in_both_modes(served, repo):
    server, client, oa = served
    want = await asyncio.to_thread(reference, repo / "lm", PROMPTS[0], 12)
    for model in ("lm", "lm-plain"):
        done = await oa.completions.create(model=model, prompt=PROMPTS[0], max_tokens=12, temperature=0)
        assert done.choices[0].text.rstrip("\ufffd") == want, model
        assert done.usage.completion_tokens <= 12
        r = await client.post(f"/v2/models/{model}/generate", json={"text_input": PROMPTS[0], "parameters": {"max_tokens": 12, "temperature": 0}})
        assert r.json()["text_output"].rstrip("\ufffd") == want


async def test_concurrent_streams_are_batched_and_each_gets_its_own_answer(served):
    server, client, oa = served
    alone = {}
    for prompt in PROMPTS:
        done = await oa.completions.create(model="lm-plain", prompt=prompt, max_tokens=40, temperature=0)
        alone[prompt] = done.choices[0].text
    engine = server.repository._find("lm", None).model._engine
    steps_before, tokens_before = engine.steps, engine.batched_tokens

    async def stream(prompt):
        chunks = await oa.completions.create(model="lm", prompt=prompt, max_tokens=40, temperature=0, stream=True)
        return "".join([c.choices[0].text async for c in chunks if c.choices])

    together = await asyncio.gather(*(stream(p) for p in PROMPTS))
    assert dict(zip(PROMPTS, together)) == alone
    steps, tokens = engine.steps - steps_before, engine.batched_tokens - tokens_before
    assert tokens > steps, f"{tokens} tokens in {steps} decode steps: the streams were never batched"


async def test_chat_template_streaming_seed_and_stop(served):
    server, client, oa = served
    messages = [{"role": "user", "content": "hello"}]
    for model in ("lm", "lm-plain"):
        kwargs = dict(model=model, messages=messages, max_tokens=12, temperature=0.9, top_p=0.95, seed=1234)
        first = await oa.chat.completions.create(**kwargs)
        again = await oa.chat.completions.create(**kwargs)
        assert first.choices[0].message.content == again.choices[0].message.content  # the seed makes sampling reproducible
        chunks = [c async for c in await oa.chat.completions.create(**kwargs, stream=True)]
        deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
        assert "".join(deltas) == first.choices[0].message.content
        assert len(deltas) > 1  # tokens arrive as they are made
        text = first.choices[0].message.content
        if len(text) > 4:
            stop = text[2:4]
            cut = await oa.chat.completions.create(**kwargs, stop=[stop])
            assert cut.choices[0].message.content == text[: text.index(stop)]
            assert cut.choices[0].finish_reason == "stop"


async def test_closing_a_stream_frees_its_sequence(served):
    server, client, oa = served
    stream = await oa.completions.create(model="lm", prompt=PROMPTS[1], max_tokens=200, temperature=0, stream=True)
    async for _ in stream:
        break
    await stream.close()
    await wait_for(lambda: server.dataplane.in_flight().get("lm") == 0, what="the request to be released")


async def test_embeddings_over_openai_match_v2(served):
    server, client, oa = served
    texts = ["a b c", "hello"]
    result = await oa.embeddings.create(model="embedder", input=texts)
    r = await client.post("/v2/models/embedder/infer", json={"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": texts}]})
    want = r.json()["outputs"][0]["data"]
    got = [x for d in result.data for x in d.embedding]
    assert got == pytest.approx(want, abs=1e-6)
    assert result.usage.prompt_tokens > 0
    with pytest.raises(openai.BadRequestError, match="does not serve embeddings"):
        await oa.embeddings.create(model="lm", input="x")
    with pytest.raises(openai.BadRequestError, match="does not serve completions"):
        await oa.completions.create(model="embedder", prompt="x")
    models = sorted([m.id async for m in oa.models.list()])
    assert models == ["embedder", "lm", "lm-plain"]


async def test_embedding_dimensions_are_unit_vectors_of_the_first_values(served):
    import numpy as np

    server, client, oa = served
    full = (await oa.embeddings.create(model="embedder", input=["a b c", "hello"])).data
    short = (await oa.embeddings.create(model="embedder", input=["a b c", "hello"], dimensions=8)).data
    for whole, cut in zip(full, short):
        whole, cut = np.array(whole.embedding), np.array(cut.embedding)
        assert cut.shape == (8,) and np.linalg.norm(cut) == pytest.approx(1.0, abs=1e-6)
        assert cut == pytest.approx(whole[:8] / np.linalg.norm(whole[:8]), abs=1e-6)  # same direction
    size = len(full[0].embedding)
    with pytest.raises(openai.BadRequestError) as info:
        await oa.embeddings.create(model="embedder", input="x", dimensions=size + 1)
    assert info.value.body["param"] == "dimensions"


async def test_tokens_stream_over_grpc_decoupled(served):
    import numpy as np

    from modelport.client import AsyncGRPCClient
    from modelport.types import InferInput, InferRequest

    server, client, oa = served
    whole = await oa.completions.create(model="lm", prompt=PROMPTS[2], max_tokens=6, temperature=0)
    text = InferInput("text_input", [1], "BYTES", np.array([PROMPTS[2].encode()], dtype=object))
    request = InferRequest("lm", [text], parameters={"max_tokens": 6, "temperature": 0})
    async with AsyncGRPCClient(f"127.0.0.1:{server.grpc_port}") as grpc_client:
        pieces = [r.outputs[0].as_numpy()[0].decode() async for r in grpc_client.infer_stream(request)]
    assert len(pieces) > 1 and "".join(pieces) == whole.choices[0].text


async def test_engine_keeps_a_lagging_reader_at_most_two_tokens_ahead(repo):
    import torch
    import transformers

    from modelport.openai import SamplingParams
    from modelport.runtimes.hf_generate import AHEAD, BatchEngine, CausalLM

    folder = repo / "lm"
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True).eval()
    engine = BatchEngine(CausalLM(torch, model, tokenizer, torch.device("cpu"), 256), max_sequences=4)
    try:
        params = SamplingParams(max_tokens=60, temperature=0)
        eager = engine.submit(PROMPTS[0], params)
        lagging = engine.submit(PROMPTS[1], params)
        read = [piece async for piece in eager]  # one reader drains its sequence...
        assert len(read) > 3
        # ...while the other never reads: its sequence made at most AHEAD tokens and then sat out the steps.
        assert 1 <= lagging.pushed <= AHEAD
        got = [piece async for piece in lagging]  # it resumes when its reader comes back
        assert lagging.pushed == len(got) > AHEAD
    finally:
        engine.stop()


def reference_logprobs(folder, prompt, steps, k):
    """Greedy tokens and their log-softmax, and the top k, straight from transformers."""
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True).eval()
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    out = []
    with torch.inference_mode():
        for _ in range(steps):
            logprobs = torch.log_softmax(model(ids).logits[0, -1].float(), -1)
            token = int(logprobs.argmax())
            if token == tokenizer.eos_token_id:
                break
            values, top = logprobs.topk(k)
            out.append((tokenizer.decode([token]), float(logprobs[token]),
                        [(tokenizer.decode([i]), float(v)) for v, i in zip(values.tolist(), top.tolist())]))
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return out


@pytest.mark.parametrize("model", ["lm", "lm-plain"])
async def test_logprobs_are_the_models_own(served, repo, model):
    server, client, oa = served
    want = await asyncio.to_thread(reference_logprobs, repo / "lm", PROMPTS[1], 6, 3)
    chat_prompt = PROMPTS[1]
    done = await oa.completions.create(model=model, prompt=chat_prompt, max_tokens=6, temperature=0, logprobs=3)
    got = done.choices[0].logprobs
    assert got.tokens == [t for t, _, _ in want]
    assert got.token_logprobs == pytest.approx([lp for _, lp, _ in want], abs=1e-4)
    # OpenAI's legacy format keys the alternatives by text (tokens that decode alike share a key)
    assert got.top_logprobs == [pytest.approx(dict(top), abs=1e-4) for _, _, top in want]
    assert got.text_offset[0] == 0 and got.text_offset == sorted(got.text_offset)
    # Streamed: the chunks' logprobs add up to the same tokens
    stream = await oa.completions.create(model=model, prompt=chat_prompt, max_tokens=6, temperature=0, logprobs=0, stream=True)
    tokens = [t async for chunk in stream for c in chunk.choices if c.logprobs for t in c.logprobs.tokens]
    assert tokens == [t for t, _, _ in want]
    # Chat: logprobs true, top_logprobs k; each entry has bytes, and top alternatives ranked
    chat = await oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=4,
                                            temperature=0, logprobs=True, top_logprobs=2)
    content = chat.choices[0].logprobs.content
    assert 0 < len(content) <= 4
    for entry in content:
        assert entry.bytes == list(entry.token.encode()) and len(entry.top_logprobs) == 2
        assert entry.top_logprobs[0].logprob >= entry.top_logprobs[1].logprob and entry.logprob <= 0
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob, abs=1e-5)  # greedy: the top one
    stream = await oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=4,
                                              temperature=0, logprobs=True, stream=True)
    streamed = [e.token async for chunk in stream for c in chunk.choices if c.logprobs for e in c.logprobs.content]
    assert streamed == [e.token for e in content]
    # Without logprobs: none; bad values: a 400 naming the parameter
    plain = await oa.completions.create(model=model, prompt=chat_prompt, max_tokens=2, temperature=0)
    assert plain.choices[0].logprobs is None
    for kwargs, param in (({"logprobs": 6}, "logprobs"),):
        with pytest.raises(openai.BadRequestError) as info:
            await oa.completions.create(model=model, prompt="x", max_tokens=2, **kwargs)
        assert info.value.body["param"] == param
    with pytest.raises(openai.BadRequestError) as info:
        await oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}], top_logprobs=2)
    assert info.value.body["param"] == "top_logprobs"


async def test_generation_refuses_what_it_cannot_honour(served):
    server, client, oa = served
    with pytest.raises(openai.BadRequestError) as info:
        await oa.chat.completions.create(model="lm", messages=[{"role": "user", "content": "x"}],
                                         response_format={"type": "json_object"})
    assert info.value.body["param"] == "response_format"
    with pytest.raises(openai.BadRequestError) as info:
        await oa.chat.completions.create(model="lm", messages=[{"role": "user", "content": "x"}], tools=[
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}])
    assert info.value.body["param"] == "tools"
