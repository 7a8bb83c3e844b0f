"""Fixture models shared by the tests: sum, echo, slow, failing, and friends."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np

from modelport import InferOutput, InferRequest, InferResponse, Model, get_predict_input, get_predict_response
from modelport.errors import InvalidInput


class SumModel(Model):
    """Sums each row of its first input: [N, K] -> [N]."""

    def load(self):
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        x = np.asarray(get_predict_input(payload))
        return get_predict_response(payload, x.sum(axis=-1), self.name)


class GatedSumModel(SumModel):
    """SumModel whose load, in every process but the first to load it, waits until someone writes to
    the FIFO named by $GATED_LOAD_FIFO (the first claims $GATED_LOAD_CLAIM): one worker ready, one loading."""

    def load(self):
        import os

        try:
            os.close(os.open(os.environ["GATED_LOAD_CLAIM"], os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            with open(os.environ["GATED_LOAD_FIFO"], "rb") as gate:  # blocks until the test opens it to write
                gate.read()
        return super().load()


class EchoModel(Model):
    """Returns every input as an output of the same name, datatype and shape."""

    def __init__(self, name="echo"):
        super().__init__(name)
        self.ready = True

    async def predict(self, payload, headers=None):
        if not isinstance(payload, InferRequest):
            return payload
        outputs = []
        for tensor in payload.inputs:
            out = InferOutput(tensor.name, tensor.shape, tensor.datatype, parameters=dict(tensor.parameters))
            out.set_data_from_numpy(tensor.as_numpy(), binary_data=False)
            outputs.append(out)
        return InferResponse(payload.id, self.name, outputs, parameters=dict(payload.parameters))


class SlowModel(Model):
    """Sleeps (sync, in the thread pool) for `delay` seconds, then echoes a count."""

    def __init__(self, name="slow", delay=0.5):
        super().__init__(name)
        self.delay = delay
        self.ready = True
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def predict(self, payload, headers=None):
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(self.delay)
        finally:
            with self._lock:
                self.active -= 1
        return get_predict_response(payload, np.array([1.0], dtype=np.float32), self.name)


class AsyncSlowModel(Model):
    def __init__(self, name="aslow", delay=0.5):
        super().__init__(name)
        self.delay = delay
        self.ready = True

    async def predict(self, payload, headers=None):
        await asyncio.sleep(self.delay)
        return get_predict_response(payload, np.array([1.0], dtype=np.float32), self.name)


class FailingModel(Model):
    """Raises a plain exception from predict: a model bug, which must become a 500."""

    def __init__(self, name="failing"):
        super().__init__(name)
        self.ready = True

    def predict(self, payload, headers=None):
        raise RuntimeError("boom: secret internal detail in a traceback")


class PickyModel(Model):
    """Raises InvalidInput from predict: the model's own validation, which must become a 400."""

    def __init__(self, name="picky"):
        super().__init__(name)
        self.ready = True

    def predict(self, payload, headers=None):
        raise InvalidInput("picky wants exactly one positive number")


class BrokenLoadModel(Model):
    def load(self):
        raise FileNotFoundError("weights.bin not found")


class HeadersModel(Model):
    """Sets a response header and echoes a request header back."""

    def __init__(self, name="headers"):
        super().__init__(name, return_response_headers=True)
        self.ready = True

    def predict(self, payload, headers=None, response_headers=None):
        response_headers["x-model-says"] = "hello"
        response_headers["x-echo"] = (headers or {}).get("x-request-tag", "")
        return get_predict_response(payload, np.array([0], dtype=np.int64), self.name)


class PrePostModel(Model):
    """Every hook does something, half of them async, to exercise the chain."""

    def __init__(self, name="prepost"):
        super().__init__(name)
        self.ready = True

    async def preprocess(self, payload, headers=None):
        if isinstance(payload, dict):
            return {"instances": [[v * 2 for v in row] for row in payload["instances"]]}
        return payload

    def predict(self, payload, headers=None):
        x = np.asarray(get_predict_input(payload), dtype=np.float64)
        return get_predict_response(payload, x.sum(axis=-1), self.name)

    def postprocess(self, result, headers=None):
        if isinstance(result, dict):
            result["postprocessed"] = True
        return result


class ExplainModel(SumModel):
    def explain(self, payload, headers=None):
        return {"explanations": ["feature 0 matters"]}


class DeclaredModel(SumModel):
    """SumModel with declared tensor metadata, so the data plane validates inputs against it."""

    def __init__(self, name="declared"):
        super().__init__(name)
        self.inputs = [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}]
        self.outputs = [{"name": "output-0", "datatype": "FP32", "shape": [-1]}]


class PidModel(Model):
    """Answers with its process id; burns `burn` seconds of CPU first; exits its process when asked to."""

    def load(self):
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        import os

        x = np.asarray(get_predict_input(payload), dtype=np.float64)
        if x.size and x.ravel()[0] < 0:
            os._exit(3)  # a crash: the worker process dies mid-request
        burn = float(payload.parameters.get("burn", 0)) if isinstance(payload, InferRequest) else 0.0
        end = time.process_time() + burn
        while time.process_time() < end:
            pass
        return get_predict_response(payload, np.array([os.getpid()] * len(x), dtype=np.int64), self.name)


class PidStagesModel(Model):
    """Reports the process each hook ran in, so tests can see which stages a worker pool took."""

    def load(self):
        self.ready = True
        return True

    def preprocess(self, payload, headers=None):
        import os

        payload.parameters["pre_pid"] = os.getpid()
        return payload

    def predict(self, payload, headers=None):
        import os

        out = InferOutput("pids", [2], "INT64")
        out.set_data_from_numpy(np.array([payload.parameters["pre_pid"], os.getpid()], dtype=np.int64))
        return InferResponse(payload.id, self.name, [out])

    def postprocess(self, result, headers=None):
        import os

        result.parameters["post_pid"] = os.getpid()
        return result


class SlowLoadPidModel(PidModel):
    """A PidModel whose load takes a second, so a process that listens before loading would be seen."""

    def load(self):
        time.sleep(1.0)
        return super().load()
