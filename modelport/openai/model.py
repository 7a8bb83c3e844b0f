"""``modelport.openai.model``: an import path only; the code lives in
:mod:`modelport.models.openai.model` (see docs/ARCHITECTURE.md)."""

from ..models.openai import model as _impl
from ..models.openai.model import (
    OPENAI_METHODS,
    ChatPrompt,
    OpenAIModel,
    OpenAIGenerativeModel,
    OpenAIEncoderModel,
    OpenAIChatAdapterModel,
    openai_methods,
)

__all__ = [
    "OPENAI_METHODS",
    "ChatPrompt",
    "OpenAIModel",
    "OpenAIGenerativeModel",
    "OpenAIEncoderModel",
    "OpenAIChatAdapterModel",
    "openai_methods",
]


def __getattr__(name: str):  # any other name the module had, private ones included
    return getattr(_impl, name)
