"""Adaptive batching: merged along the first dimension, every caller gets exactly its own rows."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from modelport import InferInput, InferOutput, InferRequest, InferResponse, Model, RequestedOutput
from modelport.execution.batching import signature
from modelport.errors import InferenceError, InvalidInput
from modelport.execution.runner import ModelRunner


class RowModel(Model):
    """Output row i = 10 * input row i (+ the row's sum), so a mixed-up split is visible; records batch sizes."""

    def __init__(self, name="rows", delay=0.0):
        super().__init__(name)
        self.ready = True
        self.batches: list[int] = []
        self.delay = delay

    async def predict(self, payload, headers=None):
        if self.delay:
            await asyncio.sleep(self.delay)
        if isinstance(payload, dict):
            self.batches.append(len(payload["instances"]))
            return {"predictions": [sum(row) * 10 for row in payload["instances"]]}
        x = payload.inputs[0].as_numpy()
        self.batches.append(x.shape[0])
        outputs = [InferOutput("scaled", list(x.shape), "FP32", x.astype(np.float32) * 10),
                   InferOutput("total", [x.shape[0]], "FP64", x.sum(axis=1).astype(np.float64))]
        return InferResponse(payload.id, self.name, outputs)


class WrongRowsModel(RowModel):
    async def predict(self, payload, headers=None):
        self.batches.append(payload.inputs[0].shape[0])
        return InferResponse(None, self.name, [InferOutput("y", [1], "FP32", np.zeros(1, np.float32))])


def request(rows: np.ndarray, request_id: str, name="x", outputs=None, **params):
    tensor = InferInput(name, list(rows.shape), "FP32", rows.astype(np.float32))
    return InferRequest("rows", [tensor], request_id=request_id, parameters=params,
                        request_outputs=[RequestedOutput(o) for o in outputs] if outputs else None)


def runner(model, size=8, wait=0.05):
    return ModelRunner(model, None, max_batch_size=size, max_batch_time=wait)


async def test_concurrent_requests_merge_and_split_exactly():
    model = RowModel()
    r = runner(model, size=64, wait=0.05)
    data = [np.arange(i, i + 4 * (i % 3 + 1), dtype=np.float32).reshape(-1, 4) for i in range(10)]
    results = await asyncio.gather(*(r.infer(request(d, f"id-{i}")) for i, d in enumerate(data)))
    assert len(model.batches) < 10, "nothing was batched"
    assert sum(model.batches) == sum(d.shape[0] for d in data)
    for i, ((response, _), d) in enumerate(zip(results, data)):
        assert response.id == f"id-{i}"
        np.testing.assert_array_equal(response.get_output_by_name("scaled").as_numpy(), d * 10)
        np.testing.assert_array_equal(response.get_output_by_name("total").as_numpy(), d.sum(axis=1))


async def test_batch_size_is_capped():
    model = RowModel(delay=0.01)
    r = runner(model, size=4, wait=0.05)
    await asyncio.gather(*(r.infer(request(np.ones((1, 2)), str(i))) for i in range(10)))
    assert max(model.batches) <= 4 and sum(model.batches) == 10


async def test_time_budget_closes_a_partial_batch():
    model = RowModel()
    r = runner(model, size=100, wait=0.02)
    # A batch of 100 never fills: only the time budget can close it (wait_for only guards against a hang).
    response, _ = await asyncio.wait_for(r.infer(request(np.ones((1, 2)), "lonely")), 60)
    assert model.batches == [1] and response.id == "lonely"


async def test_incompatible_requests_are_never_merged():
    model = RowModel()
    r = runner(model, size=64, wait=0.05)
    a = request(np.ones((2, 3)), "a")           # trailing shape 3
    b = request(np.ones((2, 5)), "b")           # trailing shape 5: another batch
    c = request(np.ones((2, 3)), "c", name="z")  # another input name
    d = request(np.ones((2, 3)), "d", mode="fast")  # other parameters
    e = request(np.ones((2, 3)), "e")           # merges with a
    results = await asyncio.gather(*(r.infer(p) for p in (a, b, c, d, e)))
    assert sorted(model.batches) == [2, 2, 2, 4]
    for (response, _), payload in zip(results, (a, b, c, d, e)):
        assert response.id == payload.id
        np.testing.assert_array_equal(response.get_output_by_name("scaled").as_numpy(), payload.inputs[0].as_numpy() * 10)


def test_signature_rules():
    assert signature(request(np.ones((2, 3)), "a")) == signature(request(np.ones((5, 3)), "b"))
    assert signature(request(np.ones((2, 3)), "a")) != signature(request(np.ones((2, 4)), "b"))
    scalar = InferRequest("m", [InferInput("x", [], "FP32", np.float32(1).reshape(()))])
    assert signature(scalar) is None
    disagree = InferRequest("m", [InferInput("x", [2, 1], "FP32", np.ones((2, 1), np.float32)),
                                  InferInput("y", [3, 1], "FP32", np.ones((3, 1), np.float32))])
    assert signature(disagree) is None
    assert signature({"instances": [[1]]}) == ("v1",)
    assert signature({"instances": [[1]], "extra": 1}) is None


async def test_outputs_without_one_row_per_input_fail_every_caller_clearly():
    model = WrongRowsModel()
    r = runner(model, size=64, wait=0.05)
    results = await asyncio.gather(*(r.infer(request(np.ones((2, 2)), str(i))) for i in range(3)), return_exceptions=True)
    assert all(isinstance(e, InferenceError) and "one row per input row" in str(e) for e in results)
    assert model.batches == [6]


async def test_model_error_reaches_every_caller_of_the_batch():
    class Failing(RowModel):
        async def predict(self, payload, headers=None):
            raise InvalidInput("bad batch")

    r = runner(Failing(), size=64, wait=0.05)
    results = await asyncio.gather(*(r.infer(request(np.ones((1, 2)), str(i))) for i in range(3)), return_exceptions=True)
    assert all(isinstance(e, InvalidInput) for e in results)


async def test_v1_instances_batch_and_split():
    model = RowModel()
    r = runner(model, size=64, wait=0.05)
    payloads = [{"instances": [[i, 1], [i, 2]]} for i in range(5)]
    results = await asyncio.gather(*(r.infer(p) for p in payloads))
    assert len(model.batches) < 5
    for (result, _), p in zip(results, payloads):
        assert result == {"predictions": [sum(row) * 10 for row in p["instances"]]}


async def test_requests_bigger_than_the_batch_run_alone():
    model = RowModel()
    r = runner(model, size=4, wait=0.05)
    response, _ = await r.infer(request(np.ones((6, 2)), "big"))
    assert model.batches == [6] and response.id == "big"


async def test_a_caller_that_gives_up_does_not_break_the_batch():
    model = RowModel(delay=0.05)
    r = runner(model, size=64, wait=0.05)
    doomed = asyncio.ensure_future(r.infer(request(np.ones((1, 2)), "doomed")))
    kept = asyncio.ensure_future(r.infer(request(np.full((1, 2), 3.0), "kept")))
    await asyncio.sleep(0)
    doomed.cancel()
    response, _ = await kept
    np.testing.assert_array_equal(response.get_output_by_name("total").as_numpy(), [6.0])


async def test_a_lone_request_does_not_wait_out_the_time_budget():
    model = RowModel()
    r = runner(model, size=64, wait=3600.0)
    # Waiting out an hour's budget would trip wait_for: the lone request must go at once.
    await asyncio.wait_for(r.infer(request(np.ones((1, 2)), "alone")), 60)
    assert model.batches == [1]


async def test_stop_fails_queued_requests_cleanly():
    model = RowModel(delay=0.3)
    r = runner(model, size=64, wait=5.0)
    running = asyncio.ensure_future(r.infer(request(np.ones((1, 2)), "first")))
    await asyncio.sleep(0.05)  # the first batch is inside predict now
    waiting = asyncio.ensure_future(r.infer(request(np.ones((1, 2)), "w")))
    await asyncio.sleep(0.05)
    await r.stop()
    with pytest.raises(InferenceError, match="unloaded"):
        await waiting
    running.cancel()
