"""``modelport.openai.generation``: an import path only; the code lives in
:mod:`modelport.models.openai.generation` (see docs/ARCHITECTURE.md)."""

from ..models.openai import generation as _impl
from ..models.openai.generation import (
    Prompt,
    SamplingParams,
    TokenLogprob,
    TokenText,
    UnsupportedParameter,
    requested_logprobs,
    chat_logprobs,
    completion_logprobs,
    refuse_unsupported,
    TextGenerationModel,
)

__all__ = [
    "Prompt",
    "SamplingParams",
    "TokenLogprob",
    "TokenText",
    "UnsupportedParameter",
    "requested_logprobs",
    "chat_logprobs",
    "completion_logprobs",
    "refuse_unsupported",
    "TextGenerationModel",
]


def __getattr__(name: str):  # any other name the module had, private ones included
    return getattr(_impl, name)
