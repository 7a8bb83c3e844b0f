"""The loop budget: a sync hook chain earns the event loop by finishing quickly, and loses it again."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from modelport.execution.hook_threads import HookThreads
from modelport.execution.loop_budget import MAX_LEARN_CALLS, LoopBudget, request_size
from modelport.model import Model
from modelport.execution.runner import ModelRunner
from modelport.settings import SettingsError, load_model_settings, load_server_settings, validate_server_settings
from modelport.types import InferInput, InferRequest

BUDGET = 0.001  # seconds


# -- the policy on its own -------------------------------------------------------------------
def test_a_chain_earns_the_loop_after_enough_fast_calls_in_a_row():
    budget = LoopBudget(BUDGET, learn_calls=4)
    for _ in range(3):
        budget.record(0.0001, 1, was_on_loop=False)
    assert not budget.fits(1)
    budget.record(0.0001, 1, was_on_loop=False)
    assert budget.fits(1)
    assert not budget.fits(2), "a request larger than any seen finishing in time still goes to a thread"


def test_a_slow_call_in_a_thread_starts_the_learning_over():
    budget = LoopBudget(BUDGET, learn_calls=4)
    for _ in range(3):
        budget.record(0.0001, 1, was_on_loop=False)
    budget.record(0.005, 1, was_on_loop=False)
    for _ in range(3):
        budget.record(0.0001, 1, was_on_loop=False)
    assert not budget.fits(1)
    budget.record(0.0001, 1, was_on_loop=False)
    assert budget.fits(1)


def test_a_thread_call_slow_only_from_waiting_neither_counts_nor_resets():
    # Under load a cheap hook in a thread waits for the GIL while the loop serves others: its wall time
    # is over the budget, its own CPU time is not. That says nothing about the hook; real work does.
    budget = LoopBudget(BUDGET, learn_calls=4)
    for _ in range(3):
        budget.record(0.0002, 1, was_on_loop=False, cpu=0.0002)
    budget.record(0.006, 1, was_on_loop=False, cpu=0.0002)
    assert not budget.fits(1), "a wait does not count as a fast call"
    budget.record(0.0002, 1, was_on_loop=False, cpu=0.0002)
    assert budget.fits(1), "nor does it start the learning over"
    slow = LoopBudget(BUDGET, learn_calls=4)
    for _ in range(3):
        slow.record(0.0002, 1, was_on_loop=False, cpu=0.0002)
    slow.record(0.006, 1, was_on_loop=False, cpu=0.005)
    slow.record(0.0002, 1, was_on_loop=False, cpu=0.0002)
    assert not slow.fits(1), "a call that worked over the budget still starts it over"


def test_on_the_loop_a_wait_is_a_quarter_strike_and_work_a_whole_one():
    budget = LoopBudget(BUDGET, learn_calls=1)
    budget.record(0.0002, 1, was_on_loop=False)
    for _ in range(7):  # the OS ran someone else mid-call: the hook worked 0.2 ms
        budget.record(0.004, 1, was_on_loop=True, cpu=0.0002)
    assert budget.fits(1), "a few waits keep the loop"
    budget.record(0.004, 1, was_on_loop=True, cpu=0.0002)
    assert not budget.fits(1), "a hook that waits every call (blocking I/O) still leaves"
    far = LoopBudget(BUDGET, learn_calls=1)
    far.record(0.0002, 1, was_on_loop=False)
    far.record(0.05, 1, was_on_loop=True, cpu=0.0002)
    assert not far.fits(1), "far over the budget leaves at once, waiting or not"


def test_one_stray_slow_call_on_the_loop_is_forgiven_two_are_not():
    budget = LoopBudget(BUDGET, learn_calls=2)
    budget.record(0.0001, 1, False)
    budget.record(0.0001, 1, False)
    budget.record(0.002, 1, was_on_loop=True)
    assert budget.fits(1), "one call over the budget (a GC pass) keeps the loop"
    for _ in range(16):  # the strike is forgotten after 16 calls within the budget
        budget.record(0.0001, 1, True)
    budget.record(0.002, 1, True)
    assert budget.fits(1)
    budget.record(0.002, 1, True)
    assert not budget.fits(1), "a second slow call soon after sends the chain back to threads"
    assert budget.learn_calls == 8, "and it must prove itself four times longer"


def test_one_call_far_over_the_budget_leaves_the_loop_at_once_and_backoff_is_capped():
    budget = LoopBudget(BUDGET, learn_calls=2)
    for _ in range(12):
        while not budget.fits(1):
            budget.record(0.0001, 1, False)
        budget.record(0.05, 1, was_on_loop=True)
        assert not budget.fits(1)
    assert budget.learn_calls == MAX_LEARN_CALLS


def test_request_size_counts_elements_instances_and_bytes():
    tensor = InferInput("x", [8, 4], "FP32", np.zeros((8, 4), np.float32))
    assert request_size(InferRequest("m", [tensor, InferInput("y", [3], "INT64", [1, 2, 3])])) == 35
    assert request_size({"instances": [[1, 2], [3, 4]]}) == 2
    assert request_size({"rev_id": 123}) == 1
    assert request_size(b"abcd") == 4


# -- in the runner ---------------------------------------------------------------------------
class Timed(Model):
    """A sync predict that takes ``seconds`` and records the thread it ran on."""

    def __init__(self, seconds: float = 0.0):
        super().__init__("timed")
        self.seconds = seconds
        self.threads: list[int] = []

    def predict(self, payload, headers=None):
        self.threads.append(threading.get_ident())
        if self.seconds:
            time.sleep(self.seconds)
        return payload


def _runner(model: Model, budget: float = BUDGET) -> tuple[ModelRunner, HookThreads]:
    threads = HookThreads(2)
    runner = ModelRunner(model, threads, loop_budget=budget)
    runner._budget.learn_calls = 8
    return runner, threads


async def test_a_fast_sync_predict_moves_onto_the_loop_thread():
    model = Timed()
    runner, threads = _runner(model)
    try:
        for _ in range(20):
            await runner.infer({"instances": [1]})
        loop_thread = threading.get_ident()
        assert model.threads[0] != loop_thread, "it starts in a hook thread"
        assert model.threads[-1] == loop_thread, "and runs on the loop once it has proved cheap"
        await runner.infer({"instances": list(range(50))})
        assert model.threads[-1] != loop_thread, "a larger request than any seen goes to a thread"
    finally:
        threads.shutdown()


async def test_a_slow_sync_predict_never_runs_on_the_loop():
    model = Timed(seconds=0.003)
    runner, threads = _runner(model)
    try:
        for _ in range(12):
            await runner.infer({"instances": [1]})
        assert threading.get_ident() not in model.threads
    finally:
        threads.shutdown()


async def test_a_model_that_turns_slow_goes_back_to_threads_and_the_loop_keeps_serving():
    model = Timed()
    runner, threads = _runner(model)
    try:
        for _ in range(12):
            await runner.infer({"instances": [1]})
        assert model.threads[-1] == threading.get_ident()
        model.seconds = 0.05  # over ten times the budget: one call on the loop is enough to leave it
        await runner.infer({"instances": [1]})
        model.threads.clear()

        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        task = asyncio.ensure_future(ticker())
        await asyncio.gather(*(runner.infer({"instances": [1]}) for _ in range(4)))
        task.cancel()
        assert threading.get_ident() not in model.threads
        assert ticks >= 10, f"the loop stalled behind the slow predict ({ticks} ticks in about 0.1 s)"
    finally:
        threads.shutdown()


# The one try on the loop leaves the coroutine asyncio.run refused unawaited: a one-time warning.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_predict_that_runs_its_own_event_loop_keeps_working_in_threads():
    class OwnLoop(Model):
        def predict(self, payload, headers=None):
            async def double():
                return payload * 2

            return asyncio.run(double())

    runner, threads = _runner(OwnLoop("own"))
    try:
        results = [(await runner.infer(3))[0] for _ in range(20)]
        assert results == [6] * 20, "no call fails when the chain is tried on the loop"
        assert runner._budget.disabled
    finally:
        threads.shutdown()


async def test_a_zero_budget_means_always_a_thread():
    model = Timed()
    threads = HookThreads(2)
    runner = ModelRunner(model, threads, loop_budget=0)
    try:
        for _ in range(50):
            await runner.infer({"instances": [1]})
        assert threading.get_ident() not in model.threads
    finally:
        threads.shutdown()


async def test_hook_errors_on_the_loop_reach_the_caller():
    class Fails(Timed):
        def predict(self, payload, headers=None):
            if payload == "no":
                raise ValueError("bad input")
            return payload

    runner, threads = _runner(Fails())
    try:
        for _ in range(12):
            await runner.infer("ok")
        assert runner._budget.fits(request_size("no"))
        with pytest.raises(ValueError, match="bad input"):
            await runner.infer("no")
        assert (await runner.infer("ok"))[0] == "ok"
    finally:
        threads.shutdown()


# -- settings --------------------------------------------------------------------------------
def test_loop_budget_settings(tmp_path):
    assert load_server_settings(env={}).loop_budget_ms == 1.0
    assert load_server_settings(env={"MODELPORT_LOOP_BUDGET_MS": "2.5"}).loop_budget_ms == 2.5
    with pytest.raises(SettingsError, match="loop_budget_ms"):
        validate_server_settings(load_server_settings(env={"MODELPORT_LOOP_BUDGET_MS": "-1"}))
    path = tmp_path / "model-settings.json"
    path.write_text('{"name": "m", "loop_budget_ms": 0}')
    assert load_model_settings(path).loop_budget_ms == 0
    path.write_text('{"name": "m", "loop_budget_ms": -2}')
    with pytest.raises(SettingsError, match="loop_budget_ms"):
        load_model_settings(path)
