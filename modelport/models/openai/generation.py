"""A text-generation model from one token generator: completions, chat, V2 generate, all streaming.

Subclass :class:`TextGenerationModel` and implement ``generate_tokens(prompt, params)``, a generator
(sync, run in the hook threads, or async) of text pieces, one per generated token, and
``count_tokens(prompt)``. Everything OpenAI asks for is done here, once: ``n`` choices (choice ``k``
samples with ``seed + k``), ``max_tokens`` (finish reason ``length``), ``stop`` sequences (cut at the
first match; streamed text holds back only what could still be the start of one), ``usage``,
``stream`` and ``stream_options.include_usage``. What it cannot honour is refused with a 400 naming
the parameter (:func:`refuse_unsupported`: ``tools``, ``response_format`` other than text, ``echo``,
``suffix``, and ``logprobs`` unless the runtime gives them), never accepted and ignored. Every chunk
of one stream carries the same ``created``. The same model answers V2 requests with a
``text_input`` BYTES input (``/generate``, ``/generate_stream``, ``infer_stream``, ModelStreamInfer).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from typing import Any, AsyncIterator, Iterator, Optional, Union

from ...errors import InvalidInput
from ...types import InferRequest
from .model import OpenAIChatAdapterModel
from .types import (
    ChatCompletion,
    ChatCompletionChoice,
    ChatCompletionChunk,
    ChatCompletionChunkChoice,
    ChatCompletionMessage,
    ChatCompletionRequest,
    ChoiceDelta,
    Completion,
    CompletionChoice,
    CompletionRequest,
    Usage,
    new_id,
    now,
)

Prompt = Union[str, list[int]]


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    seed: Optional[int] = None
    stop: tuple[str, ...] = ()
    # None: no log probabilities; k >= 0: each token's, and the k most likely alternatives. A runtime
    # that honours it (``reports_logprobs``) yields :class:`TokenText` pieces.
    logprobs: Optional[int] = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its text, its log probability, and the most likely tokens at its place."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


class TokenText(str):
    """A token's piece of text, as ``generate_tokens`` yields it, carrying its :class:`TokenLogprob`."""

    logprob: TokenLogprob

    def __new__(cls, text: str, logprob: TokenLogprob) -> TokenText:
        piece = super().__new__(cls, text)
        piece.logprob = logprob
        return piece


class _Sent(str):
    """Text a choice lets out, with the log probabilities of the tokens since the last such text."""

    logprobs: list[TokenLogprob]


class _Choice:
    """One choice's text as tokens arrive: stop sequences, max_tokens, and what may be sent yet."""

    def __init__(self, index: int, params: SamplingParams):
        self.index = index
        self.params = params
        self.text = ""
        self.sent = 0
        self.tokens = 0
        self.finish: Optional[str] = None
        self._hold = max((len(s) for s in params.stop), default=1) - 1
        self.logprobs: Optional[list[TokenLogprob]] = [] if params.logprobs is not None else None
        self._unsent = 0  # logprobs entries not yet sent with a piece of text

    def feed(self, piece: str) -> str:
        """Add one token's text; returns the text that may be sent now (sets ``finish`` when done)."""
        self.tokens += 1
        if self.logprobs is not None and isinstance(piece, TokenText):
            self.logprobs.append(piece.logprob)
        self.text += piece
        cut = min((i for i in (self.text.find(s) for s in self.params.stop) if i >= 0), default=-1)
        if cut >= 0:
            self.text = self.text[:cut]
            self.finish = "stop"
            return self.flush()
        if self.tokens >= self.params.max_tokens:
            self.finish = "length"
            return self.flush()
        safe = len(self.text) - self._hold
        if safe <= self.sent:
            return ""
        out, self.sent = self.text[self.sent : safe], safe
        return self._with_logprobs(out)

    def end(self) -> str:
        """The generator ended by itself (end of sequence)."""
        self.finish = self.finish or "stop"
        return self.flush()

    def flush(self) -> str:
        out, self.sent = self.text[self.sent :], len(self.text)
        return self._with_logprobs(out)

    def unsent_logprobs(self) -> Optional[list[TokenLogprob]]:
        """Entries of tokens whose text was never sent (an incomplete character at the end): the
        stream's finish chunk carries them. None when none are left or none were asked for."""
        if self.logprobs is None or self._unsent == len(self.logprobs):
            return None
        rest, self._unsent = self.logprobs[self._unsent :], len(self.logprobs)
        return rest

    def _with_logprobs(self, out: str) -> str:
        if self.logprobs is None or not out:
            return out
        sent = _Sent(out)
        sent.logprobs, self._unsent = self.logprobs[self._unsent :], len(self.logprobs)
        return sent


class UnsupportedParameter(InvalidInput):
    """A request parameter the model cannot honour: a 400 whose ``param`` names it."""

    def __init__(self, model: str, param: str, what: str):
        super().__init__(f"Model {model} does not support {param}: {what}")
        self.param = param


def _set(value: Any) -> bool:
    return value is not None and value is not False and value != [] and value != {}


def requested_logprobs(model: str, request: Any) -> Optional[int]:
    """How many alternatives per token a request asks log probabilities for (None: none). Chat:
    ``logprobs: true`` and ``top_logprobs`` (0-20); completions: ``logprobs`` (0-5), as OpenAI's."""
    extra = request.model_extra or {}
    logprobs, top = extra.get("logprobs"), extra.get("top_logprobs")
    if isinstance(request, ChatCompletionRequest):
        if logprobs not in (None, True, False):
            raise UnsupportedParameter(model, "logprobs", "it must be true or false")
        if top is not None and (not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= 20):
            raise UnsupportedParameter(model, "top_logprobs", "it must be an integer from 0 to 20")
        if top is not None and logprobs is not True:
            raise UnsupportedParameter(model, "top_logprobs", "it needs logprobs: true")
        return (top or 0) if logprobs else None
    if logprobs is None:
        return None
    if not isinstance(logprobs, int) or isinstance(logprobs, bool) or not 0 <= logprobs <= 5:
        raise UnsupportedParameter(model, "logprobs", "it must be an integer from 0 to 5")
    return logprobs


def chat_logprobs(entries: Optional[list[TokenLogprob]]) -> Optional[dict]:
    """OpenAI's chat ``logprobs``: ``{"content": [{token, logprob, bytes, top_logprobs}]}``."""
    if entries is None:
        return None

    def one(token: str, logprob: float) -> dict:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}

    return {"content": [{**one(e.token, e.logprob), "top_logprobs": [one(t, lp) for t, lp in e.top]} for e in entries]}


def completion_logprobs(entries: Optional[list[TokenLogprob]], offset: int = 0) -> Optional[dict]:
    """OpenAI's (legacy) completions ``logprobs``: tokens, token_logprobs, top_logprobs, text_offset."""
    if entries is None:
        return None
    offsets = []
    for e in entries:
        offsets.append(offset)
        offset += len(e.token)
    return {"tokens": [e.token for e in entries], "token_logprobs": [e.logprob for e in entries],
            "top_logprobs": [dict(e.top) for e in entries], "text_offset": offsets}


def refuse_unsupported(model: str, request: Any, logprobs: bool = False) -> None:
    """Raise :class:`UnsupportedParameter` for the first parameter this generator cannot honour
    (OpenAI's clients send them; accepting and ignoring them would answer something else)."""
    fields = {**(request.model_extra or {}), **{k: getattr(request, k) for k in ("echo", "suffix") if hasattr(request, k)}}
    if _set(fields.get("tools")) or _set(fields.get("functions")):
        param = "tools" if _set(fields.get("tools")) else "functions"
        raise UnsupportedParameter(model, param, "it generates text only, without tool calls")
    for param in ("tool_choice", "function_call"):
        if fields.get(param) not in (None, "none", "auto"):
            raise UnsupportedParameter(model, param, "it generates text only, without tool calls")
    response_format = fields.get("response_format")
    if response_format is not None and not (isinstance(response_format, dict) and response_format.get("type") == "text"):
        raise UnsupportedParameter(model, "response_format", "its output is not constrained to JSON; only {\"type\": \"text\"}")
    if not logprobs:
        for param in ("logprobs", "top_logprobs"):
            if _set(fields.get(param)):
                raise UnsupportedParameter(model, param, "this model does not report token log probabilities")
    if fields.get("echo"):
        raise UnsupportedParameter(model, "echo", "the completion does not repeat the prompt")
    if fields.get("suffix"):
        raise UnsupportedParameter(model, "suffix", "it does not insert text before a suffix")


class TextGenerationModel(OpenAIChatAdapterModel):
    """Completions, chat completions and V2 generate from ``generate_tokens``; see the module docstring."""

    default_max_tokens = 16  # OpenAI's default for completions
    default_chat_max_tokens = 256
    # Whether generate_tokens yields TokenText pieces when params.logprobs is set (else logprobs is a 400).
    reports_logprobs = False

    # -- what a runtime implements --------------------------------------------------------------
    def generate_tokens(self, prompt: Prompt, params: SamplingParams) -> Union[Iterator[str], AsyncIterator[str]]:
        raise NotImplementedError

    def tokens_are_async(self) -> bool:
        """Whether ``generate_tokens`` gives an async iterator (decided by its kind unless overridden)."""
        probe = self.generate_tokens
        return inspect.isasyncgenfunction(probe) or inspect.iscoroutinefunction(probe)

    def count_tokens(self, prompt: Prompt) -> int:
        return len(prompt) if isinstance(prompt, list) else len(prompt.split())

    # -- OpenAI ------------------------------------------------------------------------------------
    def create_completion(self, request: CompletionRequest, raw_request: Any = None, context: Optional[dict] = None) -> Any:
        refuse_unsupported(self.name, request, self.reports_logprobs)
        params = self._params(request, self.default_max_tokens)
        run = self._run(request.prompts, params, request.n)
        if request.stream:
            return self._completion_chunks(run, request)
        return self._finished(run, lambda choices, usage: Completion(
            model=request.model, usage=usage,
            choices=[CompletionChoice(index=c.index, text=c.text, finish_reason=c.finish, logprobs=completion_logprobs(c.logprobs))
                     for c in choices],
        ))

    def create_chat_completion(self, request: ChatCompletionRequest, raw_request: Any = None, context: Optional[dict] = None) -> Any:
        refuse_unsupported(self.name, request, self.reports_logprobs)
        prompt = self.apply_chat_template(request.messages)
        params = self._params(request, self.default_chat_max_tokens)
        run = self._run([prompt.prompt], params, request.n)
        if request.stream:
            return self._chat_chunks(run, request, prompt.response_role)
        return self._finished(run, lambda choices, usage: ChatCompletion(
            model=request.model, usage=usage,
            choices=[ChatCompletionChoice(index=c.index, finish_reason=c.finish,
                                          message=ChatCompletionMessage(role=prompt.response_role, content=c.text),
                                          logprobs=chat_logprobs(c.logprobs))
                     for c in choices],
        ))

    # -- V2: text_input in, text_output out (a stream of pieces) -----------------------------------
    def predict(self, payload: Any, headers: Optional[dict] = None) -> Any:
        if not isinstance(payload, InferRequest):
            raise InvalidInput(f"Model {self.name} takes V2 requests with a text_input, or the OpenAI routes")
        tensor = payload.get_input_by_name("text_input")
        if tensor is None or tensor.datatype != "BYTES":
            raise InvalidInput(f"Model {self.name} needs a BYTES input named text_input")
        text = tensor.as_numpy().ravel()[0]
        text = text.decode("utf-8") if isinstance(text, bytes) else str(text)
        p = payload.parameters
        try:
            params = SamplingParams(
                max_tokens=int(p.get("max_tokens", self.default_max_tokens)),
                temperature=float(p.get("temperature", 1.0)), top_p=float(p.get("top_p", 1.0)),
                seed=None if p.get("seed") is None else int(p["seed"]),
                stop=tuple([p["stop"]] if isinstance(p.get("stop"), str) else p.get("stop") or ()),
            )
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"Bad generation parameter: {exc}") from None
        if params.max_tokens < 1:
            raise InvalidInput("max_tokens must be at least 1")
        run = self._run([text], params, 1)
        if _is_async(run):
            return _async_texts(run)
        return (event[2] for event in run if event[0] == "text" and event[2])

    # -- the shared core ----------------------------------------------------------------------------
    def _params(self, request: Any, default_max: int) -> SamplingParams:
        return SamplingParams(
            max_tokens=request.max_tokens or default_max,
            temperature=1.0 if request.temperature is None else request.temperature,
            top_p=1.0 if request.top_p is None else request.top_p,
            seed=request.seed, stop=tuple(request.stop_sequences),
            logprobs=requested_logprobs(self.name, request) if self.reports_logprobs else None,
        )

    def _run(self, prompts: list[Prompt], params: SamplingParams, n: int) -> Any:
        """Events for every choice: ("text", index, text), ("finish", index, choice), ("usage", Usage)."""
        if self.tokens_are_async():
            return self._run_async(prompts, params, n)
        return self._run_sync(prompts, params, n)

    def _choices(self, prompts: list[Prompt], params: SamplingParams, n: int) -> Iterator[tuple[Prompt, _Choice]]:
        index = 0
        for prompt in prompts:
            for k in range(n):
                seeded = params if params.seed is None else replace(params, seed=params.seed + k)
                yield prompt, _Choice(index, seeded)
                index += 1

    def _run_sync(self, prompts: list[Prompt], params: SamplingParams, n: int) -> Iterator[tuple]:
        usage = Usage(prompt_tokens=sum(self.count_tokens(p) for p in prompts))
        for prompt, choice in self._choices(prompts, params, n):
            tokens = self.generate_tokens(prompt, choice.params)
            try:
                for piece in tokens:
                    out = choice.feed(piece)
                    if out:
                        yield "text", choice.index, out
                    if choice.finish:
                        break
                else:
                    out = choice.end()
                    if out:
                        yield "text", choice.index, out
            finally:
                getattr(tokens, "close", lambda: None)()
            usage.completion_tokens += choice.tokens
            yield "finish", choice.index, choice
        usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
        yield "usage", -1, usage

    async def _run_async(self, prompts: list[Prompt], params: SamplingParams, n: int) -> AsyncIterator[tuple]:
        usage = Usage(prompt_tokens=sum(self.count_tokens(p) for p in prompts))
        for prompt, choice in self._choices(prompts, params, n):
            tokens = self.generate_tokens(prompt, choice.params)
            try:
                async for piece in tokens:
                    out = choice.feed(piece)
                    if out:
                        yield "text", choice.index, out
                    if choice.finish:
                        break
                else:
                    out = choice.end()
                    if out:
                        yield "text", choice.index, out
            finally:
                await tokens.aclose()
            usage.completion_tokens += choice.tokens
            yield "finish", choice.index, choice
        usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
        yield "usage", -1, usage

    def _finished(self, run: Any, build: Any) -> Any:
        if _is_async(run):
            async def collect() -> Any:
                return _build(build, [event async for event in run])

            return collect()
        return _build(build, list(run))

    def _completion_chunks(self, run: Any, request: CompletionRequest) -> Any:
        chunk_id, created = new_id("cmpl"), now()  # one id and one time for every chunk, as OpenAI's
        offsets: dict[int, int] = {}  # characters of text sent per choice (logprobs' text_offset)

        def frame(event: tuple) -> Optional[Completion]:
            kind, index, value = event
            if kind == "text":
                offsets[index] = offsets.get(index, 0) + len(value)
                logprobs = completion_logprobs(getattr(value, "logprobs", None), offsets[index] - len(value))
                return Completion(id=chunk_id, created=created, model=request.model,
                                  choices=[CompletionChoice(index=index, text=value, logprobs=logprobs)])
            if kind == "finish":
                logprobs = completion_logprobs(value.unsent_logprobs(), offsets.get(index, 0))
                return Completion(id=chunk_id, created=created, model=request.model,
                                  choices=[CompletionChoice(index=index, text="", finish_reason=value.finish, logprobs=logprobs)])
            if request.include_usage:
                return Completion(id=chunk_id, created=created, model=request.model, choices=[], usage=value)
            return None

        return _mapped(run, frame)

    def _chat_chunks(self, run: Any, request: ChatCompletionRequest, role: str) -> Any:
        chunk_id, created = new_id("chatcmpl"), now()  # one id and one time for every chunk, as OpenAI's
        started: set[int] = set()

        def chunk(index: int, delta: ChoiceDelta, finish: Optional[str] = None, logprobs: Optional[dict] = None) -> ChatCompletionChunk:
            return ChatCompletionChunk(id=chunk_id, created=created, model=request.model,
                                       choices=[ChatCompletionChunkChoice(index=index, delta=delta, finish_reason=finish,
                                                                          logprobs=logprobs)])

        def frame(event: tuple) -> Any:
            kind, index, value = event
            out = []
            if kind in ("text", "finish") and index not in started:  # a choice opens with its role
                started.add(index)
                out.append(chunk(index, ChoiceDelta(role=role, content="")))
            if kind == "text":
                out.append(chunk(index, ChoiceDelta(content=value), logprobs=chat_logprobs(getattr(value, "logprobs", None))))
            elif kind == "finish":
                out.append(chunk(index, ChoiceDelta(), value.finish, chat_logprobs(value.unsent_logprobs())))
            elif request.include_usage:
                out.append(ChatCompletionChunk(id=chunk_id, created=created, model=request.model, choices=[], usage=value))
            return out

        return _flat_mapped(run, frame)


def _build(build: Any, events: list[tuple]) -> Any:
    choices = sorted((e[2] for e in events if e[0] == "finish"), key=lambda c: c.index)
    usage = next(e[2] for e in events if e[0] == "usage")
    return build(choices, usage)


def _is_async(run: Any) -> bool:
    return hasattr(run, "__anext__")


def _mapped(run: Any, frame: Any) -> Any:
    return _flat_mapped(run, lambda event: [x for x in [frame(event)] if x is not None])


def _flat_mapped(run: Any, frame: Any) -> Any:
    if _is_async(run):
        async def agen() -> AsyncIterator[Any]:
            try:
                async for event in run:
                    for item in frame(event):
                        yield item
            finally:
                await run.aclose()

        return agen()

    def gen() -> Iterator[Any]:
        try:
            for event in run:
                yield from frame(event)
        finally:
            run.close()

    return gen()


async def _async_texts(run: Any) -> AsyncIterator[str]:
    try:
        async for kind, _, value in run:
            if kind == "text" and value:
                yield value
    finally:
        await run.aclose()
