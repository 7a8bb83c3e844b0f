"""OpenAI fixture models: a word-level toy language model (sync and async) and a toy encoder."""

from __future__ import annotations

import asyncio
import random
import threading
import time

from modelport.openai import Embedding, EmbeddingData, EmbeddingUsage, OpenAIEncoderModel, OpenAIModel, TextGenerationModel

WORDS = ["alpha", "beta", "gamma", "delta", "stop", "omega"]


class ToyLM(TextGenerationModel):
    """Greedy (temperature 0): cycles the WORDS; sampled: random words from a seeded RNG. Ends after `length` tokens."""

    def __init__(self, name="toy", length=1000, delay=0.0, fail_at=None):
        super().__init__(name)
        self.ready = True
        self.length = length
        self.delay = delay
        self.fail_at = fail_at
        self.produced = 0
        self.closed = threading.Event()

    def _words(self, params):
        rng = random.Random(params.seed)
        for i in range(self.length):
            if self.fail_at is not None and i == self.fail_at:
                raise RuntimeError(f"toy broke at token {i}")
            yield (WORDS[i % len(WORDS)] if params.greedy else rng.choice(WORDS)) + " "

    def generate_tokens(self, prompt, params):
        try:
            for word in self._words(params):
                if self.delay:
                    time.sleep(self.delay)
                self.produced += 1
                yield word
        finally:
            self.closed.set()


class AsyncToyLM(ToyLM):
    async def generate_tokens(self, prompt, params):
        try:
            for word in self._words(params):
                if self.delay:
                    await asyncio.sleep(self.delay)
                self.produced += 1
                yield word
        finally:
            self.closed.set()


class ToyEncoder(OpenAIEncoderModel):
    def __init__(self, name="encoder"):
        super().__init__(name)
        self.ready = True

    async def create_embedding(self, request, raw_request=None, context=None):
        data = []
        tokens = 0
        for i, text in enumerate(request.inputs):
            text = text if isinstance(text, str) else " ".join(map(str, text))
            tokens += len(text.split())
            data.append(EmbeddingData(index=i, embedding=[float(len(text)), float(len(text.split()))]))
        return Embedding(data=data, model=request.model, usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens))


class WholeOnly(OpenAIModel):
    """A KServe-style model that always answers with the whole object, even when asked to stream."""

    def __init__(self, name="whole"):
        super().__init__(name)
        self.ready = True

    async def create_completion(self, request, raw_request=None, context=None):
        from modelport.openai import Completion
        from modelport.openai.types import CompletionChoice

        return Completion(model=request.model, choices=[CompletionChoice(index=0, text="all at once", finish_reason="stop")])


class KServeStyle(OpenAIModel):
    """Yields pre-framed SSE strings and its own [DONE], as KServe's vLLM-backed models do."""

    def __init__(self, name="kserve-style"):
        super().__init__(name)
        self.ready = True

    async def create_completion(self, request, raw_request=None, context=None):
        import json

        async def chunks():
            for word in ("one ", "two "):
                doc = {"id": "c1", "object": "text_completion", "created": 0, "model": request.model,
                       "choices": [{"index": 0, "text": word, "finish_reason": None}]}
                yield f"data: {json.dumps(doc)}\n\n"
            yield "data: [DONE]\n\n"

        return chunks()
