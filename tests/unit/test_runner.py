"""modelport.execution.runner.ModelRunner with small real Model subclasses: where hooks run and what they get."""

from __future__ import annotations

import asyncio
import threading

import pytest

from modelport.errors import Unimplemented
from modelport.model import Model
from modelport.execution.hook_threads import HookThreads
from modelport.execution.runner import ModelRunner


class Recorder:
    """A stage observer that records what it is told."""

    def __init__(self):
        self.calls: list[tuple[str, float]] = []

    def __call__(self, stage: str, seconds: float) -> None:
        self.calls.append((stage, seconds))

    @property
    def stages(self) -> list[str]:
        return [stage for stage, _ in self.calls]


class SyncPredict(Model):
    def __init__(self):
        super().__init__("sync")
        self.threads: dict[str, int] = {}

    def predict(self, payload, headers=None):
        self.threads["predict"] = threading.get_ident()
        return {"predicted": payload, "headers": headers}


class SyncChain(SyncPredict):
    def preprocess(self, payload, headers=None):
        self.threads["preprocess"] = threading.get_ident()
        return payload + ["pre"]

    def predict(self, payload, headers=None):
        self.threads["predict"] = threading.get_ident()
        return payload + ["predict"]

    def postprocess(self, result, headers=None):
        self.threads["postprocess"] = threading.get_ident()
        return result + ["post"]


class AsyncChain(Model):
    def __init__(self):
        super().__init__("async")
        self.threads: dict[str, int] = {}

    async def preprocess(self, payload, headers=None):
        self.threads["preprocess"] = threading.get_ident()
        await asyncio.sleep(0)
        return payload + ["pre"]

    async def predict(self, payload, headers=None):
        self.threads["predict"] = threading.get_ident()
        return payload + ["predict"]

    async def postprocess(self, result, headers=None):
        self.threads["postprocess"] = threading.get_ident()
        return result + ["post"]


class Mixed(Model):
    """async preprocess, sync predict, async postprocess."""

    def __init__(self):
        super().__init__("mixed")
        self.threads: dict[str, int] = {}

    async def preprocess(self, payload, headers=None):
        self.threads["preprocess"] = threading.get_ident()
        return payload + ["pre"]

    def predict(self, payload, headers=None):
        self.threads["predict"] = threading.get_ident()
        return payload + ["predict"]

    async def postprocess(self, result, headers=None):
        self.threads["postprocess"] = threading.get_ident()
        return result + ["post"]


class SyncPreAsyncPredict(Model):
    def __init__(self):
        super().__init__("mixed2")
        self.threads: dict[str, int] = {}

    def preprocess(self, payload, headers=None):
        self.threads["preprocess"] = threading.get_ident()
        return payload + ["pre"]

    async def predict(self, payload, headers=None):
        self.threads["predict"] = threading.get_ident()
        return payload + ["predict"]


# -- where hooks run ---------------------------------------------------------------------------------


async def test_sync_predict_runs_off_the_event_loop_thread():
    model = SyncPredict()
    result, response_headers = await ModelRunner(model).infer([1], {"h": "v"})
    assert result == {"predicted": [1], "headers": {"h": "v"}}
    assert response_headers == {}
    assert model.threads["predict"] != threading.get_ident()


async def test_sync_hooks_use_the_given_threads_and_cross_once_per_request():
    threads = HookThreads(4, name="hooks")
    model = SyncChain()
    names: list[str] = []
    original = model.predict

    def predict(payload, headers=None):
        names.append(threading.current_thread().name)
        return original(payload, headers)

    model.predict = predict  # an instance attribute: still a plain function hook
    runner = ModelRunner(model, threads=threads)
    result, _ = await runner.infer([], None)
    threads.shutdown()
    assert result == ["pre", "predict", "post"]
    assert names and names[0].startswith("hooks")
    loop_thread = threading.get_ident()
    # One crossing into the pool: the whole sync chain ran in one worker thread, never on the loop.
    assert len(set(model.threads.values())) == 1
    assert loop_thread not in model.threads.values()


async def test_async_hooks_run_on_the_event_loop():
    model = AsyncChain()
    result, _ = await ModelRunner(model).infer([], None)
    assert result == ["pre", "predict", "post"]
    assert set(model.threads.values()) == {threading.get_ident()}


async def test_mixed_async_and_sync_chain():
    loop_thread = threading.get_ident()
    model = Mixed()
    result, _ = await ModelRunner(model).infer([], None)
    assert result == ["pre", "predict", "post"]
    assert model.threads["preprocess"] == loop_thread
    assert model.threads["postprocess"] == loop_thread
    assert model.threads["predict"] != loop_thread

    model = SyncPreAsyncPredict()
    result, _ = await ModelRunner(model).infer([], None)
    assert result == ["pre", "predict"]
    assert model.threads["preprocess"] != loop_thread
    assert model.threads["predict"] == loop_thread


async def test_sync_hooks_do_not_block_the_loop():
    release = threading.Event()

    class Blocking(Model):
        def predict(self, payload, headers=None):
            assert release.wait(10)
            return "done"

    task = asyncio.ensure_future(ModelRunner(Blocking("b")).infer(None))
    await asyncio.sleep(0.01)
    assert not task.done()  # the loop is free while predict blocks in its thread
    release.set()
    assert (await task)[0] == "done"


# -- which hooks run ------------------------------------------------------------------------------


@pytest.mark.parametrize("model_cls", [SyncPredict, AsyncChain, Mixed, SyncChain, SyncPreAsyncPredict])
async def test_default_pre_and_postprocess_are_skipped_and_stages_observed(model_cls):
    model = model_cls()
    observed = Recorder()
    runner = ModelRunner(model, observe=observed)
    # Only the hooks the model overrides run (predict always); the base class's pass-throughs are skipped.
    expected = [s for s in ("preprocess", "predict", "postprocess") if getattr(type(model), s) is not getattr(Model, s)]
    await runner.infer([], None)
    assert observed.stages == expected
    assert all(seconds >= 0 for _, seconds in observed.calls)
    await runner.infer([], None)
    assert observed.stages == expected * 2  # once per stage per request


async def test_base_model_predict_is_unimplemented():
    with pytest.raises(Unimplemented, match="does not implement predict"):
        await ModelRunner(Model("bare")).infer({"instances": []})


async def test_hook_errors_propagate_from_threads_and_the_loop():
    class SyncFails(Model):
        def predict(self, payload, headers=None):
            raise ValueError("sync boom")

    class AsyncFails(Model):
        async def predict(self, payload, headers=None):
            raise KeyError("async boom")

    with pytest.raises(ValueError, match="sync boom"):
        await ModelRunner(SyncFails("s")).infer(None)
    with pytest.raises(KeyError, match="async boom"):
        await ModelRunner(AsyncFails("a")).infer(None)


# -- headers ------------------------------------------------------------------------------------


class HeaderModel(Model):
    def preprocess(self, payload, headers=None, response_headers=None):
        response_headers["x-pre"] = "1"
        return payload

    def predict(self, payload, headers=None, response_headers=None):
        assert isinstance(response_headers, dict)
        response_headers["x-model"] = headers.get("x-in", "none") if headers else "none"
        return payload


class AsyncHeaderModel(Model):
    async def predict(self, payload, response_headers):
        response_headers["x-async"] = "yes"
        return payload

    async def postprocess(self, result, headers=None, response_headers=None):
        response_headers["x-post"] = str(len(response_headers))
        return result


async def test_response_headers_come_back():
    result, response_headers = await ModelRunner(HeaderModel("h")).infer("p", {"x-in": "abc"})
    assert result == "p"
    assert response_headers == {"x-pre": "1", "x-model": "abc"}
    result, response_headers = await ModelRunner(AsyncHeaderModel("a")).infer("p", None)
    assert response_headers == {"x-async": "yes", "x-post": "1"}
    # A fresh dict per request.
    runner = ModelRunner(HeaderModel("h"))
    _, first = await runner.infer("p")
    _, second = await runner.infer("p", {"x-in": "z"})
    assert first == {"x-pre": "1", "x-model": "none"} and second == {"x-pre": "1", "x-model": "z"}


async def test_hooks_without_a_headers_parameter_are_called_without_it():
    seen: list = []

    class NoHeaders(Model):
        def preprocess(self, payload):
            seen.append(("pre", payload))
            return payload + 1

        async def predict(self, payload):
            seen.append(("predict", payload))
            return payload * 10

        def postprocess(self, result):
            seen.append(("post", result))
            return result

    class KwargsHeaders(Model):
        def predict(self, payload, **kwargs):
            seen.append(("kwargs", kwargs))
            return payload

    class AllSyncNoHeaders(Model):
        def predict(self, payload):
            return [payload]

    assert (await ModelRunner(NoHeaders("n")).infer(1, {"a": "b"}))[0] == 20
    assert seen == [("pre", 1), ("predict", 2), ("post", 20)]
    assert (await ModelRunner(AllSyncNoHeaders("s")).infer(3, {"a": "b"}))[0] == [3]
    await ModelRunner(KwargsHeaders("k")).infer(0, {"a": "b"})
    assert seen[-1] == ("kwargs", {"headers": {"a": "b"}})


# -- lifecycle ----------------------------------------------------------------------------------


async def test_load_returning_true_marks_the_model_ready():
    class ReturnsTrue(Model):
        def load(self):
            return True  # KServe style: says so without setting self.ready

    model = ReturnsTrue("t")
    assert await ModelRunner(model).load() is True
    assert model.ready is True


async def test_load_setting_ready_is_enough():
    class SetsReady(Model):
        async def load(self):
            self.ready = True  # returns None

    model = SetsReady("r")
    assert await ModelRunner(model).load() is True and model.ready is True
    assert await ModelRunner(Model("base")).load() is True  # the base load sets ready


async def test_load_that_fails_to_get_ready():
    class NotReady(Model):
        def load(self):
            return False

    model = NotReady("n")
    assert await ModelRunner(model).load() is False
    assert model.ready is False


async def test_sync_load_runs_off_the_loop_and_async_load_on_it():
    threads = {}

    class SyncLoad(Model):
        def load(self):
            threads["sync"] = threading.get_ident()
            return super().load()

    class AsyncLoad(Model):
        async def load(self):
            threads["async"] = threading.get_ident()
            self.ready = True

    await ModelRunner(SyncLoad("s")).load()
    await ModelRunner(AsyncLoad("a")).load()
    assert threads["sync"] != threading.get_ident() and threads["async"] == threading.get_ident()


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_stop_and_mlserver_unload_are_both_called(asynchronous):
    calls: list[str] = []

    if asynchronous:

        class Both(Model):
            async def stop(self):
                calls.append("stop")

            async def unload(self):
                calls.append("unload")
                return True

    else:

        class Both(Model):
            def stop(self):
                calls.append("stop")

            def unload(self):
                calls.append("unload")
                return True

    await ModelRunner(Both("b")).stop()
    assert calls == ["stop", "unload"]


async def test_stop_without_unload():
    calls: list[str] = []

    class OnlyStop(Model):
        def stop(self):
            calls.append("stop")

    await ModelRunner(OnlyStop("s")).stop()
    await ModelRunner(Model("base")).stop()  # the base stop does nothing
    assert calls == ["stop"]


# -- explain ------------------------------------------------------------------------------------


async def test_explain():
    with pytest.raises(Unimplemented, match="does not support explain"):
        await ModelRunner(Model("m")).explain({})

    class Explains(Model):
        def explain(self, payload, headers=None, response_headers=None):
            response_headers["x-explained"] = "1"
            return {"why": payload, "thread": threading.get_ident()}

    observed = Recorder()
    result, response_headers = await ModelRunner(Explains("e"), observe=observed).explain("because")
    assert result["why"] == "because" and result["thread"] != threading.get_ident()
    assert response_headers == {"x-explained": "1"}
    assert observed.stages == ["explain"]


class InlineWhenSmall(SyncPredict):
    """A runtime that answers small payloads on the loop (predict_inline) and the rest in a thread."""

    def predict_inline(self, payload):
        if payload["n"] > 1:
            return NotImplemented
        self.threads["inline"] = threading.get_ident()
        return {"inline": payload}


class InlineWithPreprocess(InlineWhenSmall):
    def preprocess(self, payload, headers=None):
        return payload


async def test_predict_inline_runs_on_the_loop_and_falls_back_to_a_thread():
    model, observed = InlineWhenSmall(), Recorder()
    runner = ModelRunner(model, observe=observed)
    loop_thread = threading.get_ident()
    result, _ = await runner.infer({"n": 1})
    assert result == {"inline": {"n": 1}} and model.threads["inline"] == loop_thread
    assert observed.stages == ["predict"]
    result, _ = await runner.infer({"n": 2})  # NotImplemented: the usual threaded predict
    assert result["predicted"] == {"n": 2} and model.threads["predict"] != loop_thread


async def test_predict_inline_is_skipped_when_other_hooks_run():
    model = InlineWithPreprocess()
    result, _ = await ModelRunner(model).infer({"n": 1})
    assert "predicted" in result and "inline" not in model.threads
