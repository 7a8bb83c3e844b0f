"""Generation bench: time to first token and tokens/s, 1 and 8 concurrent streams, with and without
continuous batching, for a tiny random GPT-2 (built here; nothing downloaded).

    PYTHONPATH=. python bench/generation.py [--tokens 64] [--layers 2 --hidden 32] [--rounds 5] [--torch-threads 1]
                                            [--out bench/results/generation.json]

One in-process server holds the same model twice: ``lm`` (continuous batching) and ``lm-plain``
(one loop per request in the hook threads). Each case streams ``/openai/v1/completions`` (greedy,
``max_tokens`` fixed, usage from ``stream_options.include_usage``) over a real socket with httpx.
"8 one at a time" is the baseline a batcher must beat: the same 8 requests, sequentially.
The client runs in the server's process and loop, so the numbers are indicative, not absolute.

A second table times the decode step alone (no server, no HTTP): one sequence stepped 8 times
versus 8 sequences stepped once together, which is what continuous batching buys per token. The
engine's mean batch size during the 8-stream case shows the streams really shared steps.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modelport import ModelServer  # noqa: E402
from tests.openai.tiny_lm import build_tiny_lm  # noqa: E402

PROMPTS = [f"prompt number {i}: the quick brown fox" for i in range(8)]


async def one_stream(client: httpx.AsyncClient, model: str, prompt: str, tokens: int) -> dict:
    body = {"model": model, "prompt": prompt, "max_tokens": tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    first = None
    usage = 0
    async with client.stream("POST", "/openai/v1/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            doc = json.loads(line[6:])
            if doc.get("choices") and doc["choices"][0].get("text") and first is None:
                first = time.perf_counter() - start
            if doc.get("usage"):
                usage = doc["usage"]["completion_tokens"]
    return {"ttft": first or 0.0, "seconds": time.perf_counter() - start, "tokens": usage}


async def case(client: httpx.AsyncClient, model: str, streams: int, tokens: int, sequential: bool) -> dict:
    start = time.perf_counter()
    if sequential:
        results = [await one_stream(client, model, PROMPTS[i % 8], tokens) for i in range(streams)]
    else:
        results = await asyncio.gather(*(one_stream(client, model, PROMPTS[i % 8], tokens) for i in range(streams)))
    wall = time.perf_counter() - start
    total = sum(r["tokens"] for r in results)
    return {
        "model": model, "streams": streams, "sequential": sequential, "tokens": total, "wall_s": round(wall, 3),
        "tokens_per_s": round(total / wall, 1),
        "ttft_ms_median": round(statistics.median(r["ttft"] for r in results) * 1000, 1),
        "ttft_ms_max": round(max(r["ttft"] for r in results) * 1000, 1),
    }


def decode_only(folder: Path, steps: int = 32) -> dict:
    """Tokens/s of the decode step alone: 8 sequences one by one vs 8 in one padded batch."""
    import torch
    import transformers

    from modelport.runtimes.hf_generate import CausalLM

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True).eval()
    lm = CausalLM(torch, model, tokenizer, torch.device("cpu"), None)

    class Seq:
        def __init__(self, prompt: str):
            self.kv, _ = lm.prefill(lm.encode(prompt))
            self.length = len(lm.encode(prompt))
            self.next_token = 5

    out = {}
    with torch.inference_mode():
        seqs = [Seq(p) for p in PROMPTS]
        start = time.perf_counter()
        for s in seqs:
            kv = s.kv
            for _ in range(steps):
                kv, _ = lm.step_one(kv, 5)
        out["one_by_one_tokens_per_s"] = round(8 * steps / (time.perf_counter() - start), 1)
        seqs = [Seq(p) for p in PROMPTS]
        start = time.perf_counter()
        for _ in range(steps):
            lm.step_batch(seqs)
        out["batch_of_8_tokens_per_s"] = round(8 * steps / (time.perf_counter() - start), 1)
    return out


async def main(args: argparse.Namespace) -> list[dict]:
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch

    torch.set_num_threads(args.torch_threads)  # on a busy 2-core box, OpenMP's spinning threads cost 5-10x
    work = Path(tempfile.mkdtemp(prefix="modelport-genbench-"))
    try:
        build_tiny_lm(work / "lm", layers=args.layers, hidden=args.hidden)
        shutil.copytree(work / "lm", work / "lm-plain")
        (work / "lm" / "model-settings.json").write_text(json.dumps({"name": "lm", "implementation": "huggingface"}))
        (work / "lm-plain" / "model-settings.json").write_text(json.dumps(
            {"name": "lm-plain", "implementation": "huggingface",
             "parameters": {"extra": {"continuous_batching": False}}}))
        server = ModelServer(http_port=0, enable_grpc=False, host="127.0.0.1", model_repository=str(work), inference_threads=8)
        await server.start_async()
        rows = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=600) as client:
            for model in ("lm", "lm-plain"):
                await case(client, model, 2, 8, False)  # warm-up
            plan = [("lm-plain", 1, False), ("lm", 1, False), ("lm-plain", 8, True), ("lm-plain", 8, False), ("lm", 8, False)]
            runs: dict[tuple, list[dict]] = {key: [] for key in plan}
            engine = server.repository._find("lm", None).model._engine
            batch_steps = batch_tokens = 0
            for _ in range(args.rounds):  # rounds interleave the cases, so load from elsewhere hits them alike
                for key in plan:
                    before = (engine.steps, engine.batched_tokens)
                    runs[key].append(await case(client, key[0], key[1], args.tokens, key[2]))
                    if key == ("lm", 8, False):
                        batch_steps += engine.steps - before[0]
                        batch_tokens += engine.batched_tokens - before[1]
            for key in plan:
                ordered = sorted(runs[key], key=lambda r: r["tokens_per_s"])
                row = dict(ordered[(len(ordered) - 1) // 2])  # the median round
                row["rounds_tokens_per_s"] = [r["tokens_per_s"] for r in runs[key]]
                model, streams, sequential = key
                row["continuous_batching"] = model == "lm"
                rows.append(row)
                label = f"{'CB ' if row['continuous_batching'] else 'no CB'} {streams} {'one at a time' if sequential else 'concurrent'}"
                print(f"{label:<28} {row['tokens_per_s']:>8} tok/s   TTFT median {row['ttft_ms_median']:>7} ms  max {row['ttft_ms_max']:>7} ms"
                      f"   ({row['tokens']} tokens in {row['wall_s']} s)", flush=True)
        mean_batch = round(batch_tokens / max(1, batch_steps), 2)
        print(f"continuous batching, 8 streams: mean batch size {mean_batch} over {batch_steps} decode steps")
        rows.append({"case": "engine", "mean_batch_size_8_streams": mean_batch, "decode_steps": batch_steps})
        await server.stop(grace_period=1)
        decode = decode_only(work / "lm")
        print(f"decode step alone: 8 sequences one by one {decode['one_by_one_tokens_per_s']} tok/s, "
              f"8 in one batch {decode['batch_of_8_tokens_per_s']} tok/s")
        rows.append({"case": "decode_only", **decode})
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=64, help="max_tokens per stream (default 64)")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--torch-threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per case; the median round is reported (default 5)")
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    rows = asyncio.run(main(args))
    if args.out:
        args.out.write_text(json.dumps({"model": {"layers": args.layers, "hidden": args.hidden, "max_tokens": args.tokens},
                                        "cpus": os.cpu_count(), "rounds": args.rounds, "torch_threads": args.torch_threads, "rows": rows}, indent=2) + "\n")
