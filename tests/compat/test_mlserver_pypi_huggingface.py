"""MLServer's own huggingface runtime (mlserver-huggingface 1.7.1 from PyPI, imports renamed) serves a
tiny random text-classification model built here (no download: HF_HUB_OFFLINE=1), under `modelport serve`
in a process whose path starts with the transformers/optimum versions that runtime was written for."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from .mlserver_pypi import hf_stack, tensorflow_standin, unpack_renamed
from tests.e2e.serving import REPO, served, wait_ready  # noqa: F401

pytestmark = pytest.mark.timeout(600)


def _tiny_classifier(folder) -> None:
    """A 2-label BERT with random weights and a word-level tokenizer, saved as a HF model folder."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad", "movie", "the"]
    raw = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(words), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=32, num_labels=2,
                        id2label={0: "NEG", 1: "POS"}, label2id={"NEG": 0, "POS": 1})
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    # Saved by this process's transformers, read by the runtime's older one: name a class both know.
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    settings["tokenizer_class"] = "PreTrainedTokenizerFast"
    (folder / "tokenizer_config.json").write_text(json.dumps(settings))


def test_huggingface_runtime_answers(tmp_path, served):
    pytest.importorskip("torch")
    stack = hf_stack()
    # Under its own name modelport would serve the class path with its built-in runtime.
    pkgs = unpack_renamed("mlserver-huggingface", tmp_path / "pkgs", package_as="pypi_mlserver_huggingface")
    tensorflow_standin(tmp_path / "standins")
    model_dir = tmp_path / "models" / "sentiment"
    _tiny_classifier(model_dir / "model")
    (model_dir / "model-settings.json").write_text(json.dumps({
        "name": "sentiment", "implementation": "pypi_mlserver_huggingface.HuggingFaceRuntime",
        # Absolute: this runtime hands the uri to transformers as is (MLServer does not resolve it either).
        "parameters": {"uri": str(model_dir / "model"), "extra": {"task": "text-classification", "framework": "pt"}},
    }))
    path = os.pathsep.join(map(str, [stack, pkgs, tmp_path / "standins", REPO]))
    server = served(str(tmp_path / "models"), "--host", "127.0.0.1", "--http-port", "0", "--grpc-port", "0",
                    env={"PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    # The server listens once the runtime has loaded: importing torch and that transformers/optimum, then the
    # model, takes over 30 s on a busy 2-core machine. A bound for a stuck start, as wait_ready's below.
    url = server.http_url(timeout=300)
    try:
        wait_ready(url, timeout=120)
    except AssertionError:
        raise AssertionError(server.output) from None
    body = {"inputs": [{"name": "args", "shape": [1], "datatype": "BYTES", "data": ["the good movie"]}]}
    r = httpx.post(f"{url}/v2/models/sentiment/infer", json=body, timeout=60)
    assert r.status_code == 200, r.text + server.output
    doc = r.json()
    assert doc["model_name"] == "sentiment" and doc["id"]
    (output,) = doc["outputs"]
    (answer,) = [json.loads(item) for item in output["data"]]
    assert answer["label"] in ("NEG", "POS") and 0 <= answer["score"] <= 1
