"""A frozen heap with models loaded on demand (serving/heap.py, repository/residency.py).

The server freezes its heap once at start-up, with residency too, so full collections walk only what
serving made since. What an eviction lets go must still be freed: loads happen into instances made
after the freeze, and an instance that was frozen with what it loaded is checked as it goes. These
tests freeze on purpose while a model is resident to reach that check, with a model that holds a
reference cycle (only the collector frees it) and with the built-in sklearn runtime (no cycle)."""

from __future__ import annotations

import gc
import json
import weakref

from .conftest import sklearn_folder, v2_body

CYCLIC_PY = '''
import numpy as np
from modelport import InferOutput, InferResponse, Model


class Cyclic(Model):
    """Holds a reference to itself once loaded: reference counting alone never frees it."""

    def load(self):
        self.weights = np.ones(1000, dtype=np.float32)
        self.me = self
        self.ready = True
        return True

    async def predict(self, payload, headers=None):
        x = payload.inputs[0].as_numpy().astype(np.float32)
        out = InferOutput("y", [x.shape[0]], "FP32")
        out.set_data_from_numpy(x.sum(axis=-1), binary_data=False)
        return InferResponse(payload.id, self.name, [out])
'''


def cyclic_folder(root, names):
    for name in names:
        folder = root / name
        folder.mkdir(parents=True)
        (folder / "cyclic.py").write_text(CYCLIC_PY)
        (folder / "model-settings.json").write_text(json.dumps({"name": name, "implementation": "cyclic.Cyclic"}))
    return root


async def infer(client, name):
    r = await client.post(f"/v2/models/{name}/infer", json=v2_body())
    assert r.status_code == 200, r.text
    return r


async def test_the_heap_is_frozen_with_residency_and_evicted_cyclic_models_are_still_freed(serve, tmp_path):
    folder = cyclic_folder(tmp_path / "models", ["a", "b"])
    server, client = await serve(model_repository=str(folder), max_loaded_models=1)
    freezer = server.dataplane.freezer
    assert freezer is not None and freezer.frozen and gc.get_freeze_count() > 0
    refs = []
    for name in ["a", "b"] * 5:  # one fits: every request loads one model and evicts the other
        await infer(client, name)
        refs.append(weakref.ref(server.repository._find(name, None).model))
    gc.collect()
    # Loaded into instances made after the freeze: the collector finds their cycles.
    assert sum(ref() is not None for ref in refs) == 1
    assert freezer.frozen and not freezer.given_up and gc.get_freeze_count() > 0


async def test_a_frozen_cyclic_model_thaws_the_heap_for_good_when_evicted(serve, tmp_path):
    folder = cyclic_folder(tmp_path / "models", ["a", "b"])
    server, client = await serve(model_repository=str(folder), max_loaded_models=1)
    freezer = server.dataplane.freezer
    await infer(client, "a")
    frozen_a = weakref.ref(server.repository._find("a", None).model)
    freezer.settle()  # a freeze while "a" is loaded: its instance and weights are frozen with it
    await infer(client, "b")  # evicts "a": frozen and in a cycle, it outlives its last user
    assert "a" in freezer.given_up and not freezer.frozen and gc.get_freeze_count() == 0
    gc.collect()
    assert frozen_a() is None  # thawed, the collector frees it
    await infer(client, "a")  # and the server serves on
    assert freezer.settle() is None and not freezer.frozen  # never frozen again


async def test_a_frozen_model_without_cycles_is_freed_and_the_heap_stays_frozen(serve, tmp_path, iris_bytes):
    folder = sklearn_folder(tmp_path / "models", iris_bytes, 2)
    server, client = await serve(model_repository=str(folder), max_loaded_models=1)
    freezer = server.dataplane.freezer
    await infer(client, "m0")
    frozen_m0 = weakref.ref(server.repository._find("m0", None).model)
    freezer.settle()
    await infer(client, "m1")  # evicts m0: reference counting frees it, frozen or not
    assert frozen_m0() is None
    assert freezer.frozen and not freezer.given_up


async def test_reloading_a_model_frozen_with_its_load_thaws_the_heap_and_a_later_one_does_not(serve, tmp_path):
    """A reload swaps a new entry in beside the old one. A pinned model loaded at start-up was frozen
    with what it loaded, so replacing it thaws the heap for good; one loaded on demand was not."""
    from .conftest import sized_model

    folder = tmp_path / "models"
    sized_model(folder, "pinned", pinned=True)
    sized_model(folder, "lazy")
    server, client = await serve(model_repository=str(folder), max_loaded_models=2)
    freezer = server.dataplane.freezer
    assert server.repository._find("pinned", None).state.value == "READY" and freezer.frozen
    await infer(client, "lazy")
    r = await client.post("/v2/repository/models/lazy/load")
    assert r.status_code == 200, r.text
    assert freezer.frozen and not freezer.given_up
    r = await client.post("/v2/repository/models/pinned/load")
    assert r.status_code == 200, r.text
    assert "pinned" in freezer.given_up and not freezer.frozen and gc.get_freeze_count() == 0
    await infer(client, "pinned")
