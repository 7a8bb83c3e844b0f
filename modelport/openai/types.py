"""``modelport.openai.types``: an import path only; the code lives in
:mod:`modelport.models.openai.types` (see docs/ARCHITECTURE.md)."""

from ..models.openai import types as _impl
from ..models.openai.types import (
    MAX_N,
    MAX_STOP,
    StreamOptions,
    CompletionRequest,
    ChatMessage,
    ChatCompletionRequest,
    EmbeddingRequest,
    new_id,
    now,
    Usage,
    CompletionChoice,
    Completion,
    ChatCompletionMessage,
    ChatCompletionChoice,
    ChatCompletion,
    ChoiceDelta,
    ChatCompletionChunkChoice,
    ChatCompletionChunk,
    EmbeddingData,
    EmbeddingUsage,
    Embedding,
    ErrorInfo,
    ErrorResponse,
    ModelCard,
    ModelList,
)

__all__ = [
    "MAX_N",
    "MAX_STOP",
    "StreamOptions",
    "CompletionRequest",
    "ChatMessage",
    "ChatCompletionRequest",
    "EmbeddingRequest",
    "new_id",
    "now",
    "Usage",
    "CompletionChoice",
    "Completion",
    "ChatCompletionMessage",
    "ChatCompletionChoice",
    "ChatCompletion",
    "ChoiceDelta",
    "ChatCompletionChunkChoice",
    "ChatCompletionChunk",
    "EmbeddingData",
    "EmbeddingUsage",
    "Embedding",
    "ErrorInfo",
    "ErrorResponse",
    "ModelCard",
    "ModelList",
]


def __getattr__(name: str):  # any other name the module had, private ones included
    return getattr(_impl, name)
