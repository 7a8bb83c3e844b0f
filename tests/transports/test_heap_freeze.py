"""The frozen heap (modelport/serving/heap.py): frozen once the models load, thawed around a reload so
the replaced model is freed even when it sits in a reference cycle, thawed at shutdown; off by setting."""

from __future__ import annotations

import gc
import json
import weakref

from modelport import Model, get_predict_input


class CyclicModel(Model):
    """A model in a reference cycle: only the collector frees it, and never while it is frozen."""

    def load(self) -> bool:
        self.me = self
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        return get_predict_input(payload)


def _folder(tmp_path):
    (tmp_path / "cyc").mkdir()
    (tmp_path / "cyc" / "model-settings.json").write_text(
        json.dumps({"name": "cyc", "implementation": "tests.transports.test_heap_freeze.CyclicModel"}))
    return str(tmp_path)


async def test_frozen_after_load_and_a_reloaded_model_is_freed(serve, tmp_path):
    before = gc.get_freeze_count()
    server, client = await serve(model_repository=_folder(tmp_path))
    assert server.dataplane.freezer is not None and server.dataplane.freezer.frozen
    assert gc.get_freeze_count() > before
    old = weakref.ref(server.repository._find("cyc", None).model)
    assert gc.get_freeze_count() > 0

    assert (await client.post("/v2/repository/models/cyc/load")).status_code == 200  # a reload: a new instance
    new = server.repository._find("cyc", None).model
    assert new is not old() and new.ready
    gc.collect()
    assert old() is None  # the replaced model's cycle was collected, not kept frozen
    assert server.dataplane.freezer.frozen  # settled again after the change
    assert (await client.post("/v2/models/cyc/infer", json={"inputs": [
        {"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]})).status_code == 200

    await server.stop(grace_period=1)
    assert server.dataplane.freezer is None
    assert gc.get_freeze_count() == 0  # thawed at shutdown


async def test_setting_off_freezes_nothing(serve, tmp_path):
    server, _ = await serve(model_repository=_folder(tmp_path), gc_freeze=False)
    assert server.dataplane.freezer is None
    assert gc.get_freeze_count() == 0
