"""Hugging Face transformers models from a local folder (``config.json`` plus tokenizer files).

Nothing is downloaded: the folder is loaded with ``local_files_only=True`` (fetch remote folders with
``parameters.uri``, which goes through modelport's storage). Tasks (``parameters.extra.task``):

* ``"sequence-classification"`` (also ``"text-classification"``, ``"sentiment-analysis"``): text in;
  ``label`` (BYTES, from the config's ``id2label``) and ``score`` (FP32, its probability) out, and
  ``probabilities`` (FP32 [rows, labels]) when a V2 request asks for it by name.
* ``"sentence-embeddings"`` (also ``"feature-extraction"``, ``"embeddings"``): text in; ``embedding``
  (FP32 [rows, hidden]) out: token states pooled (``extra.pooling``: ``"mean"`` by default, ``"cls"``,
  ``"max"``; a sentence-transformers folder's 1_Pooling/config.json is honoured) and L2-normalised
  (``extra.normalize``, default true).

* ``"text-generation"`` (also ``"causal-lm"``, ``"generate"``): a causal LM (``*ForCausalLM``,
  ``*LMHeadModel``) served on the OpenAI routes (``/openai/v1/completions`` and ``chat/completions``,
  streamed or not, with the tokenizer's chat template when it has one) and on V2 as ``text_input`` →
  ``text_output`` (``/generate``, ``/generate_stream``, ``infer_stream``, gRPC ModelStreamInfer).
  Tokens stream as they are made; ``stop``, ``max_tokens``, ``temperature``, ``top_p`` and ``seed``
  are honoured. ``extra.continuous_batching`` (default true) decodes concurrent generations in one
  batch that requests join and leave between steps; ``extra.max_sequences`` (default 16) caps it.
  Without continuous batching each generation is its own loop in a hook thread.

Sentence-embedding models also answer ``/openai/v1/embeddings``.
Without a task, a ``*ForSequenceClassification`` architecture means classification, a
``*ForCausalLM``/``*LMHeadModel`` one text generation, and a sentence-transformers folder
(modules.json) or a bare encoder embeddings.
Input: V2 one BYTES tensor ``text`` of shape [rows]; V1 ``instances``: strings, or objects with "text".
Other settings: ``max_length`` (tokens, default: the model's limit), ``device`` (default "cpu").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import import_optional
from ..errors import InvalidInput
from ..models.openai.generation import SamplingParams, TextGenerationModel
from ..models.openai.model import ChatPrompt, OpenAIEncoderModel
from ..models.openai.types import Embedding, EmbeddingData, EmbeddingUsage
from ..settings import SettingsError
from ..types import InferRequest
from ._common import (
    ModelLoadError,
    declare,
    extra,
    framework_error,
    model_path,
    requested_names,
    respond,
    set_platform,
    strings,
)

CLASSIFICATION = "sequence-classification"
EMBEDDINGS = "sentence-embeddings"
GENERATION = "text-generation"
_TASKS = {
    "text-generation": GENERATION,
    "causal-lm": GENERATION,
    "generate": GENERATION,
    "sequence-classification": CLASSIFICATION,
    "text-classification": CLASSIFICATION,
    "sentiment-analysis": CLASSIFICATION,
    "sentence-embeddings": EMBEDDINGS,
    "feature-extraction": EMBEDDINGS,
    "embeddings": EMBEDDINGS,
}
_POOLING = ("mean", "cls", "max")
TEXT = "text"


class HuggingFaceModel(TextGenerationModel, OpenAIEncoderModel):
    """Serves a local transformers model for text classification, sentence embeddings or text generation."""

    _engine: Any = None
    reports_logprobs = True  # generation yields TokenText pieces when a request asks for logprobs (hf_generate.py)

    # One input is taken under any name, as KServe's and MLServer's servers do; metadata keeps the declared one.
    single_input_any_name = True

    def load(self) -> bool:
        torch = import_optional("torch", extra="huggingface")
        transformers = import_optional("transformers", extra="huggingface")
        self._torch = torch
        options = extra(self)
        folder = model_path(self, "huggingface")
        if not (folder / "config.json").is_file():
            raise ModelLoadError(f"{folder} is not a Hugging Face model folder: it has no config.json")
        task = self._task(options.get("task"), folder)
        self._task_name = task
        device = str(options.get("device", "cpu"))
        try:
            self._device = torch.device(device)
        except RuntimeError as exc:
            raise SettingsError(f"Model {self.name}: parameters.extra.device {device!r}: {exc}") from None
        try:
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            auto = {CLASSIFICATION: transformers.AutoModelForSequenceClassification,
                    GENERATION: transformers.AutoModelForCausalLM}.get(task, transformers.AutoModel)
            self._model = auto.from_pretrained(str(folder), local_files_only=True).to(self._device).eval()
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
            raise ModelLoadError(f"Cannot load Hugging Face model from {folder}: {type(exc).__name__}: {exc}") from exc
        self._max_length = self._limit(options.get("max_length"), folder)
        text = {"name": TEXT, "datatype": "BYTES", "shape": [-1]}
        if task == GENERATION:
            self._load_generation(torch, options)
            return self.ready
        if task == CLASSIFICATION:
            config = self._model.config
            self._labels = [str(config.id2label.get(i, i)) for i in range(config.num_labels)]
            outputs = [
                {"name": "label", "datatype": "BYTES", "shape": [-1]},
                {"name": "score", "datatype": "FP32", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(self._labels)]},
            ]
        else:
            self._pooling = self._pooling_mode(options.get("pooling"), folder)
            self._normalize = _flag(options.get("normalize", True), "normalize", self.name)
            outputs = [{"name": "embedding", "datatype": "FP32", "shape": [-1, int(self._model.config.hidden_size)]}]
        declare(self, [text], outputs)
        set_platform(self, "huggingface")
        self.ready = True
        return self.ready

    def _task(self, task: Any, folder: Path) -> str:
        if task is not None:
            try:
                return _TASKS[str(task).lower()]
            except KeyError:
                raise SettingsError(
                    f"Model {self.name}: parameters.extra.task {task!r} is not one of {', '.join(_TASKS)}"
                ) from None
        config = _read_json(folder / "config.json")
        architectures = config.get("architectures") or []
        if any(a.endswith("ForSequenceClassification") for a in architectures):
            return CLASSIFICATION
        if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
            return GENERATION
        if (folder / "modules.json").is_file() or any(a.endswith("Model") for a in architectures):
            return EMBEDDINGS
        raise SettingsError(
            f"Model {self.name}: cannot tell the task of {folder} (architectures: {', '.join(architectures) or 'none'}); "
            f"set parameters.extra.task to one of {', '.join(_TASKS)}"
        )

    def _limit(self, max_length: Any, folder: Path) -> int | None:
        if max_length is not None:
            return int(max_length)
        sentence = _read_json(folder / "sentence_bert_config.json")
        if isinstance(sentence.get("max_seq_length"), int):
            return sentence["max_seq_length"]
        limit = getattr(self._tokenizer, "model_max_length", None)
        positions = getattr(self._model.config, "max_position_embeddings", None)
        candidates = [v for v in (limit, positions) if isinstance(v, int) and 0 < v < 1_000_000]
        return min(candidates) if candidates else None

    def _pooling_mode(self, pooling: Any, folder: Path) -> str:
        if pooling is None:
            config = _read_json(folder / "1_Pooling" / "config.json")  # a sentence-transformers folder
            keys = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens"}
            pooling = next((mode for mode, key in keys.items() if config.get(key)), "mean")
        if pooling not in _POOLING:
            raise SettingsError(f"Model {self.name}: parameters.extra.pooling must be one of {', '.join(_POOLING)}")
        return pooling

    # -- text generation ---------------------------------------------------------------------
    def _load_generation(self, torch: Any, options: dict) -> None:
        from .hf_generate import BatchEngine, CausalLM

        self._lm = CausalLM(torch, self._model, self._tokenizer, self._device, self._max_length)
        if _flag(options.get("continuous_batching", True), "continuous_batching", self.name):
            limit = options.get("max_sequences", 16)
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise SettingsError(f"Model {self.name}: parameters.extra.max_sequences must be a positive integer, got {limit!r}")
            self._engine = BatchEngine(self._lm, limit, name=f"modelport-generate-{self.name}")
        declare(self, [{"name": "text_input", "datatype": "BYTES", "shape": [1]}],
                [{"name": "text_output", "datatype": "BYTES", "shape": [1]}])
        set_platform(self, "huggingface")
        self.ready = True

    def openai_methods(self) -> list[str]:
        task = getattr(self, "_task_name", None)
        if task == GENERATION:
            return ["create_completion", "create_chat_completion"]
        return ["create_embedding"] if task == EMBEDDINGS else []

    def tokens_are_async(self) -> bool:
        return self._engine is not None

    def generate_tokens(self, prompt: Any, params: SamplingParams) -> Any:
        if self._engine is not None:
            return self._engine.submit(prompt, params)
        from .hf_generate import stream_tokens

        return stream_tokens(self._lm, prompt, params)

    def count_tokens(self, prompt: Any) -> int:
        return len(prompt) if isinstance(prompt, list) else len(self._tokenizer(prompt)["input_ids"])

    def apply_chat_template(self, messages: Any) -> ChatPrompt:
        if not getattr(self._tokenizer, "chat_template", None):
            return super().apply_chat_template(messages)
        turns = [{"role": m.role, "content": m.text} for m in messages]
        try:
            prompt = self._tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # noqa: BLE001 - a template error is the request's problem (jinja raises its own)
            raise InvalidInput(f"The chat template failed on these messages: {exc}") from None
        return ChatPrompt(prompt=prompt)

    def stop(self) -> None:
        if self._engine is not None:
            self._engine.stop()

    # -- embeddings over OpenAI ----------------------------------------------------------------
    def create_embedding(self, request: Any, raw_request: Any = None, context: Any = None) -> Embedding:
        if getattr(self, "_task_name", None) != EMBEDDINGS:
            raise InvalidInput(f"Model {self.name} does not serve embeddings")
        texts = [t if isinstance(t, str) else self._tokenizer.decode(t) for t in request.inputs]
        vectors, tokens = self._embed(texts)
        if request.dimensions is not None:
            vectors = self._shorten(vectors, request.dimensions)
        data = [EmbeddingData(index=i, embedding=_encode_vector(v, request.encoding_format)) for i, v in enumerate(vectors)]
        return Embedding(data=data, model=request.model, usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens))

    def _shorten(self, vectors: np.ndarray, dimensions: int) -> np.ndarray:
        """The first ``dimensions`` values of each vector, scaled back to unit length as OpenAI's are
        (when the model's vectors are unit vectors: ``extra.normalize``, the default)."""
        if dimensions > vectors.shape[1]:
            error = InvalidInput(f"dimensions is {dimensions}; model {self.name} makes vectors of {vectors.shape[1]}")
            error.param = "dimensions"  # type: ignore[attr-defined]
            raise error
        vectors = vectors[:, :dimensions]
        if not self._normalize:
            return vectors
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)

    def _embed(self, texts: list[str]) -> tuple[np.ndarray, int]:
        torch = self._torch
        try:
            encoded = self._tokenizer(
                texts, padding=True, truncation=self._max_length is not None, max_length=self._max_length, return_tensors="pt"
            ).to(self._device)
            with torch.inference_mode():
                result = self._model(**encoded)
        except (ValueError, TypeError, RuntimeError, IndexError) as exc:
            raise framework_error(self, exc) from exc
        pooled = self._pool(result.last_hidden_state, encoded["attention_mask"]).cpu().numpy()
        return pooled, int(encoded["attention_mask"].sum())

    # -- inference -----------------------------------------------------------------------------
    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        if self._task_name == GENERATION:
            return TextGenerationModel.predict(self, payload, headers)
        texts = self._texts(payload)
        torch = self._torch
        try:
            encoded = self._tokenizer(
                texts, padding=True, truncation=self._max_length is not None, max_length=self._max_length, return_tensors="pt"
            ).to(self._device)
            with torch.inference_mode():
                result = self._model(**encoded)
        except (ValueError, TypeError, RuntimeError, IndexError) as exc:
            raise framework_error(self, exc) from exc
        if self._task_name == CLASSIFICATION:
            probabilities = torch.softmax(result.logits.float(), dim=-1)
            scores, best = probabilities.max(dim=-1)
            outputs: dict[str, Any] = {
                "label": np.array([self._labels[i] for i in best.tolist()], dtype=object),
                "score": scores.cpu().numpy(),
            }
            if "probabilities" in requested_names(payload):
                outputs["probabilities"] = probabilities.cpu().numpy()
        else:
            outputs = {"embedding": self._pool(result.last_hidden_state, encoded["attention_mask"]).cpu().numpy()}
        return respond(self, payload, outputs)

    def _pool(self, states: Any, mask: Any) -> Any:
        torch = self._torch
        states = states.float()
        if self._pooling == "cls":
            pooled = states[:, 0]
        elif self._pooling == "max":
            pooled = states.masked_fill(mask.unsqueeze(-1) == 0, float("-inf")).max(dim=1).values
        else:
            weights = mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        if self._normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled

    def _texts(self, payload: Any) -> list[str]:
        if isinstance(payload, InferRequest):
            if len(payload.inputs) != 1:
                raise InvalidInput(f"Model {self.name} takes one BYTES input {TEXT!r}, got {len(payload.inputs)}")
            tensor = payload.inputs[0]
            if tensor.datatype != "BYTES":
                raise InvalidInput(f"Input {tensor.name!r} must be BYTES text, got {tensor.datatype}")
            array = tensor.as_numpy()
            if array.ndim == 2 and array.shape[1] == 1:
                array = array.reshape(-1)
            if array.ndim != 1:
                raise InvalidInput(f"Input {tensor.name!r} must have shape [rows], got {list(array.shape)}")
            texts = strings(tensor.name, array)
        else:
            instances = payload.get("instances", payload.get("inputs"))
            if isinstance(instances, str):
                instances = [instances]
            if not isinstance(instances, list):
                raise InvalidInput('Expected "instances" to be a list of strings')
            texts = []
            for item in instances:
                if isinstance(item, dict):
                    item = item.get(TEXT)
                if not isinstance(item, str):
                    raise InvalidInput(f'Model {self.name} expects instances that are strings (or {{"text": ...}}), got {item!r:.60}')
                texts.append(item)
        if not texts:
            raise InvalidInput("The request has no text")
        return texts


def _encode_vector(vector: np.ndarray, encoding: str) -> Any:
    if encoding == "base64":
        import base64

        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _flag(value: Any, name: str, model: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no"):
        return False
    raise SettingsError(f"Model {model}: parameters.extra.{name} must be true or false, got {value!r}")
