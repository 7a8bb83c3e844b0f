"""OpenAI model classes, named and shaped as KServe's (``kserve.protocol.rest.openai``), so KServe
code ports by changing imports.

A method may be ``async def`` or ``def`` (a sync one runs in the hook threads), and may return the
finished object or a generator/iterator of chunks (sync or async): each chunk becomes one
``data:`` event, and the stream ends with ``data: [DONE]``. A chunk may be a pydantic model, a dict,
or a string (a string that already starts with ``data:`` is sent as it is, as KServe's vLLM models
produce them). Unlike KServe's, these models are loaded like any other (``load`` runs) and also
answer the V2 protocol where they implement ``predict``.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from pydantic import BaseModel

from ...errors import Unimplemented
from ...model import Model
from .types import ChatCompletionRequest, ChatMessage, CompletionRequest, EmbeddingRequest

OPENAI_METHODS = ("create_completion", "create_chat_completion", "create_embedding")


class ChatPrompt(BaseModel):
    response_role: str = "assistant"
    prompt: str


class OpenAIModel(Model):
    """The base of the OpenAI model classes; a model serves the OpenAI routes it implements."""

    def openai_methods(self) -> list[str]:
        return [m for m in OPENAI_METHODS if _implements(self, m)]


class OpenAIGenerativeModel(OpenAIModel):
    """Implement ``create_completion`` (/v1/completions) and ``create_chat_completion`` (/v1/chat/completions)."""

    async def create_completion(self, request: CompletionRequest, raw_request: Any = None, context: Optional[dict] = None) -> Any:
        raise Unimplemented(f"Model {self.name} does not implement completions")

    async def create_chat_completion(self, request: ChatCompletionRequest, raw_request: Any = None,
                                     context: Optional[dict] = None) -> Any:
        raise Unimplemented(f"Model {self.name} does not implement chat completions")


class OpenAIEncoderModel(OpenAIModel):
    """Implement ``create_embedding`` (/v1/embeddings)."""

    async def create_embedding(self, request: EmbeddingRequest, raw_request: Any = None, context: Optional[dict] = None) -> Any:
        raise Unimplemented(f"Model {self.name} does not implement embeddings")


class OpenAIChatAdapterModel(OpenAIGenerativeModel):
    """Chat through completions: ``apply_chat_template`` turns messages into a prompt.

    The default template is plain text (``role: content`` lines, then ``assistant:``); a runtime
    with a tokenizer chat template overrides it."""

    def apply_chat_template(self, messages: Iterable[ChatMessage]) -> ChatPrompt:
        lines = [f"{m.role}: {m.text}" for m in messages]
        return ChatPrompt(prompt="\n".join(lines) + "\nassistant:")


def _implements(model: Any, method: str) -> bool:
    """Whether the model's class overrides ``method`` (the base versions only say it is missing)."""
    fn = getattr(type(model), method, None)
    if fn is None:
        return False
    bases = (OpenAIGenerativeModel, OpenAIEncoderModel)
    return all(getattr(base, method, None) is not fn for base in bases)


def openai_methods(model: Any) -> list[str]:
    """The OpenAI methods a model serves: its own ``openai_methods()`` when it has one (a runtime whose
    answer depends on what it loaded), else those its class implements."""
    own = getattr(model, "openai_methods", None)
    if callable(own):
        return list(own())
    return [m for m in OPENAI_METHODS if _implements(model, m)]
