"""Token generation for Hugging Face causal LMs: a plain loop, and continuous batching.

Both keep a KV cache per sequence. The plain loop (:func:`stream_tokens`) runs one sequence in the
hook thread that pulls it. The :class:`BatchEngine` runs one decode loop in its own thread for every
sequence in flight: between two decode steps, new sequences join (their prompt is prefilled alone)
and finished or abandoned ones leave; each step pads the sequences' caches on the left to a common
length and decodes one token for all of them in one forward pass (attention mask and position ids
keep each sequence's numbers its own). Tokens reach the asyncio side through the loop's
``call_soon_threadsafe``. A sequence runs at most ``AHEAD`` tokens ahead of its reader: one whose
reader lags sits out the steps (its cache waits) until the reader catches up. That bounds what is
buffered for a slow reader, and keeps the engine from hogging the GIL while the event loop sends.
"""

from __future__ import annotations

import asyncio
import inspect
import queue
import threading
from typing import Any, Iterator

from ..errors import InvalidInput
from ..models.openai.generation import SamplingParams, TokenLogprob, TokenText

_END = object()
AHEAD = 4  # tokens a sequence may have made that its reader has not taken yet


class CausalLM:
    """A loaded model and tokenizer, with the few operations generation needs."""

    def __init__(self, torch: Any, model: Any, tokenizer: Any, device: Any, limit: int | None):
        self.torch = torch
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.limit = limit
        self.eos = tokenizer.eos_token_id
        forward = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in forward else "past_key_values"  # transformers 5 renamed it

    def encode(self, prompt: Any) -> list[int]:
        ids = list(prompt) if isinstance(prompt, list) else self.tokenizer(prompt)["input_ids"]
        if not ids:
            raise InvalidInput("The prompt is empty")
        if self.limit is not None and len(ids) >= self.limit:
            raise InvalidInput(f"The prompt has {len(ids)} tokens; this model takes at most {self.limit - 1}")
        return ids

    def _forward(self, **kwargs: Any) -> tuple[Any, Any]:
        cache = kwargs.pop("cache", None)
        if cache is not None:
            kwargs[self._cache_kw] = cache
        out = self.model(use_cache=True, **kwargs)
        cache = getattr(out, "cache", None)
        if cache is None:
            cache = out.past_key_values
        return out.logits, cache

    def prefill(self, ids: list[int]) -> tuple[list[tuple[Any, Any]], Any]:
        logits, cache = self._forward(input_ids=self.torch.tensor([ids], device=self.device))
        return _layers(cache), logits[0, -1]

    def step_one(self, layers: list[tuple[Any, Any]], token: int) -> tuple[list[tuple[Any, Any]], Any]:
        logits, cache = self._forward(input_ids=self.torch.tensor([[token]], device=self.device), cache=_cache(layers))
        return _layers(cache), logits[0, -1]

    def step_batch(self, seqs: list[_Seq]) -> Any:
        """One decode step for every sequence: left-pad caches to a common length, mask the padding."""
        torch = self.torch
        longest = max(s.length for s in seqs)
        layers = []
        for index in range(len(seqs[0].kv)):
            keys, values = [], []
            for s in seqs:
                k, v = s.kv[index]
                pad = longest - s.length
                keys.append(torch.nn.functional.pad(k, (0, 0, pad, 0)) if pad else k)
                values.append(torch.nn.functional.pad(v, (0, 0, pad, 0)) if pad else v)
            layers.append((torch.cat(keys), torch.cat(values)))
        mask = torch.zeros(len(seqs), longest + 1, dtype=torch.long, device=self.device)
        for row, s in enumerate(seqs):
            mask[row, longest - s.length :] = 1
        positions = torch.tensor([[s.length] for s in seqs], device=self.device)
        tokens = torch.tensor([[s.next_token] for s in seqs], device=self.device)
        logits, cache = self._forward(input_ids=tokens, cache=_cache(layers), attention_mask=mask, position_ids=positions)
        new = _layers(cache)
        for row, s in enumerate(seqs):
            s.length += 1
            s.kv = [(k[row : row + 1, :, -s.length :], v[row : row + 1, :, -s.length :]) for k, v in new]
        return logits[:, -1]

    def sample(self, logits: Any, params: SamplingParams, generator: Any) -> int:
        torch = self.torch
        logits = logits.float()
        if params.greedy:
            return int(logits.argmax())
        probs = torch.softmax(logits / params.temperature, dim=-1)
        if params.top_p < 1.0:
            ordered, order = probs.sort(descending=True)
            keep = ordered.cumsum(-1) - ordered < params.top_p  # the smallest set whose mass reaches top_p
            ordered = ordered * keep
            probs = torch.zeros_like(probs).scatter(-1, order, ordered)
        return int(torch.multinomial(probs, 1, generator=generator))

    def piece(self, text: str, logits: Any, token: int, params: SamplingParams) -> str:
        """The token's text, with its log probability when the request asks for them (OpenAI's
        logprobs: the model's log-softmax, before temperature and top_p reshape it)."""
        if params.logprobs is None:
            return text
        logprobs = self.torch.log_softmax(logits.float(), dim=-1)
        top: tuple = ()
        if params.logprobs:
            values, ids = logprobs.topk(params.logprobs)
            top = tuple((self.tokenizer.decode([i]), float(v)) for v, i in zip(values.tolist(), ids.tolist()))
        return TokenText(text, TokenLogprob(self.tokenizer.decode([token]), float(logprobs[token]), top))

    def generator(self, seed: int | None) -> Any:
        if seed is None:
            return None
        gen = self.torch.Generator(device="cpu")
        gen.manual_seed(seed)
        return gen


class Detokenizer:
    """Text per token, for tokenizers whose pieces only make sense together (bytes split across tokens)."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.text = ""

    def add(self, token: int) -> str:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return ""  # an incomplete UTF-8 sequence: wait for the next token
        piece, self.text = text[len(self.text) :], text
        return piece


def _budget(lm: CausalLM, prompt_length: int, params: SamplingParams) -> int:
    if lm.limit is None:
        return params.max_tokens
    return max(0, min(params.max_tokens, lm.limit - prompt_length))


def stream_tokens(lm: CausalLM, prompt: Any, params: SamplingParams) -> Iterator[str]:
    """One sequence, one token per ``next`` (run in the hook threads): each token's text ('' while a
    character is incomplete); ends at end-of-sequence, ``max_tokens`` or the context limit."""
    torch = lm.torch
    ids = lm.encode(prompt)
    generator = lm.generator(params.seed)
    text = Detokenizer(lm.tokenizer)
    with torch.inference_mode():
        kv, logits = lm.prefill(ids)
    for _ in range(_budget(lm, len(ids), params)):
        token = lm.sample(logits, params, generator)
        if token == lm.eos:
            return
        yield lm.piece(text.add(token), logits, token, params)
        with torch.inference_mode():
            kv, logits = lm.step_one(kv, token)


class _Seq:
    """One sequence in the batch engine; an async iterator of token texts on the asyncio side."""

    def __init__(self, ids: list[int], params: SamplingParams, loop: asyncio.AbstractEventLoop, lm: CausalLM,
                 wake: threading.Event):
        self.ids = ids
        self.wake = wake
        # Single-writer counters (the engine writes pushed, the reader taken): how far ahead it is.
        self.pushed = 0
        self.taken = 0
        self.params = params
        self.loop = loop
        self.out: asyncio.Queue = asyncio.Queue()
        self.cancelled = False
        self.kv: list[tuple[Any, Any]] = []
        self.length = len(ids)
        self.next_token = -1
        self.left = _budget(lm, len(ids), params)
        self.generator = lm.generator(params.seed)
        self.text = Detokenizer(lm.tokenizer)

    @property
    def ready(self) -> bool:
        return self.pushed - self.taken < AHEAD

    def push(self, item: Any) -> None:
        if isinstance(item, str):
            self.pushed += 1
        try:
            self.loop.call_soon_threadsafe(self.out.put_nowait, item)
        except RuntimeError:
            self.cancelled = True  # the loop is closed

    # -- the reader's side: an async iterator of token texts --------------------------------------
    def __aiter__(self) -> _Seq:
        return self

    async def __anext__(self) -> str:
        if self.cancelled and self.out.empty():
            raise StopAsyncIteration
        item = await self.out.get()
        if item is _END:
            self.cancelled = True
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            await self.aclose()
            raise item
        self.taken += 1
        self.wake.set()  # the engine may be waiting for this reader
        return item

    async def aclose(self) -> None:
        """The reader is gone: the engine drops the sequence before its next step."""
        self.cancelled = True
        self.wake.set()


class BatchEngine:
    """Continuous batching: one decode loop for all sequences in flight (up to ``max_sequences``)."""

    def __init__(self, lm: CausalLM, max_sequences: int = 16, name: str = "modelport-generate"):
        self.lm = lm
        self.max_sequences = max_sequences
        self.name = name
        self._pending: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self.steps = 0  # decode steps taken (the bench reads these)
        self.batched_tokens = 0

    def submit(self, prompt: Any, params: SamplingParams) -> _Seq:
        """Queue a generation; iterate the answer (``async for``) for its token texts, ``aclose`` it to stop."""
        seq = _Seq(self.lm.encode(prompt), params, asyncio.get_running_loop(), self.lm, self._wake)
        self._pending.put(seq)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        self._wake.set()
        return seq

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    def _run(self) -> None:
        torch = self.lm.torch
        active: list[_Seq] = []
        while not self._stopped:
            self._wake.clear()  # before looking: a set() from now on wakes the wait below
            while len(active) < self.max_sequences and not self._pending.empty():
                seq = self._pending.get()
                if not seq.cancelled:
                    self._guard(seq, lambda s=seq: self._join(s, torch)) and active.append(seq)
            active = [s for s in active if not s.cancelled]
            ready = [s for s in active if s.ready]
            if not ready:  # nothing in flight, or every reader is behind
                self._wake.wait(1.0)
                continue
            try:
                with torch.inference_mode():
                    logits = self.lm.step_batch(ready)
            except Exception as exc:  # noqa: BLE001 - every sequence in the step hears about it
                for s in ready:
                    s.push(exc)
                    s.cancelled = True
                continue
            self.steps += 1
            self.batched_tokens += len(ready)
            finished = {id(s) for row, s in enumerate(ready) if not self._emit(s, logits[row])}
            active = [s for s in active if id(s) not in finished]

    def _guard(self, seq: _Seq, fn: Any) -> bool:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - handed to the waiting request
            seq.push(exc)
            return False

    def _join(self, seq: _Seq, torch: Any) -> bool:
        with torch.inference_mode():
            seq.kv, logits = self.lm.prefill(seq.ids)
        return self._emit(seq, logits)

    def _emit(self, seq: _Seq, logits: Any) -> bool:
        """Sample this sequence's next token and send its text; False when the sequence is done."""
        if seq.cancelled:
            return False
        if seq.left <= 0:
            seq.push(_END)
            return False
        token = self.lm.sample(logits, seq.params, seq.generator)
        if token == self.lm.eos:
            seq.push(_END)
            return False
        seq.left -= 1
        seq.next_token = token
        seq.push(self.lm.piece(seq.text.add(token), logits, token, seq.params))
        if seq.left <= 0:
            seq.push(_END)
            return False
        return True


def _layers(cache: Any) -> list[tuple[Any, Any]]:
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return [(layer.keys, layer.values) for layer in layers]
    if hasattr(cache, "key_cache"):
        return list(zip(cache.key_cache, cache.value_cache))
    return [(k, v) for k, v in cache]  # the legacy tuple format


def _cache(layers: list[tuple[Any, Any]]) -> Any:
    from transformers import DynamicCache

    try:
        return DynamicCache(layers)
    except TypeError:
        return DynamicCache.from_legacy_cache(tuple(layers))
