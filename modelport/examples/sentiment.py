"""A tiny text model: a word-list sentiment scorer over BYTES input, with no dependencies."""

from __future__ import annotations

import re

import numpy as np

from modelport import InferOutput, InferRequest, InferResponse, Model
from modelport.errors import InvalidInput

_POSITIVE = frozenset("good great excellent love loved like nice happy fast wonderful best amazing fine".split())
_NEGATIVE = frozenset("bad terrible awful hate hated slow poor worst broken sad angry wrong".split())


def score(text: str) -> float:
    """In [-1, 1]: (positive words - negative words) / words that carry sentiment."""
    words = re.findall(r"[a-z']+", text.lower())
    pos = sum(w in _POSITIVE for w in words)
    neg = sum(w in _NEGATIVE for w in words)
    return 0.0 if pos + neg == 0 else (pos - neg) / (pos + neg)


class SentimentModel(Model):
    def predict(self, payload, headers=None):
        if isinstance(payload, InferRequest):
            texts = [t for tensor in payload.inputs for t in _flat(tensor.as_string())]
        else:
            texts = payload.get("instances") if isinstance(payload, dict) else None
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise InvalidInput("sentiment expects \"instances\" to be a list of strings")
        scores = np.array([score(t) for t in texts], dtype=np.float32)
        labels = np.array(["positive" if s > 0 else "negative" if s < 0 else "neutral" for s in scores], dtype=object)
        if not isinstance(payload, InferRequest):
            return {"predictions": [{"label": str(lb), "score": float(s)} for lb, s in zip(labels, scores)]}
        out_label = InferOutput("label", [len(texts)], "BYTES")
        out_label.set_data_from_numpy(labels, binary_data=False)
        out_score = InferOutput("score", [len(texts)], "FP32")
        out_score.set_data_from_numpy(scores, binary_data=False)
        return InferResponse(payload.id, self.name, [out_label, out_score])


def _flat(value):
    if isinstance(value, list):
        for item in value:
            yield from _flat(item)
    else:
        yield value
