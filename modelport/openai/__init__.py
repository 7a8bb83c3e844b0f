"""OpenAI-compatible API: model classes named as KServe's, request/response types, and a text-generation
base class. Routes live in :mod:`modelport.openai.routes` (wired by the REST app). Needs pydantic
(``pip install modelport[openai]``)."""

from ..models.openai.generation import SamplingParams, TextGenerationModel, TokenLogprob, TokenText
from ..models.openai.model import ChatPrompt, OpenAIChatAdapterModel, OpenAIEncoderModel, OpenAIGenerativeModel, OpenAIModel
from ..models.openai.types import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    Completion,
    CompletionRequest,
    Embedding,
    EmbeddingData,
    EmbeddingRequest,
    EmbeddingUsage,
    ErrorResponse,
    Usage,
)

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatMessage",
    "ChatPrompt",
    "Completion",
    "CompletionRequest",
    "Embedding",
    "EmbeddingData",
    "EmbeddingRequest",
    "EmbeddingUsage",
    "ErrorResponse",
    "OpenAIChatAdapterModel",
    "OpenAIEncoderModel",
    "OpenAIGenerativeModel",
    "OpenAIModel",
    "SamplingParams",
    "TextGenerationModel",
    "TokenLogprob",
    "TokenText",
    "Usage",
]
