"""PyTorch models: TorchScript archives (``.pt``, ``.pth``) and ``torch.export`` archives (``.pt2``).

A ``.pt2`` file is loaded with ``torch.export.load(...).module()``; its inputs' names, datatypes and
shapes (-1 for dynamic dimensions) and its outputs become the model's V2 metadata. A TorchScript file
is loaded with ``torch.jit.load`` (deprecated by PyTorch in favour of ``torch.export``; it still
works). A state dict saved with ``torch.save`` is not a model: write a Model class for it.

Inputs: V2 tensors are passed to ``forward`` by name when every name is a parameter of ``forward``,
otherwise positionally in request order. V1 ``instances`` become the single argument (objects keyed
by argument name for several); V1 floats become float32 (JSON has no float width). Outputs: a tensor
is ``output-0``, a tuple or list of tensors ``output-0``, ``output-1``, ..., a dict keeps its keys.
Inference runs under ``torch.inference_mode()``; arrays cross to tensors without copies where numpy
allows it.

Settings (``parameters.extra``): ``device`` (default ``"cpu"``; e.g. ``"cuda"``, ``"cuda:1"``).
"""

from __future__ import annotations

import inspect
import logging
import threading
import warnings
import zipfile
from typing import Any

import numpy as np

from .._optional import import_optional
from ..errors import InvalidInput
from ..model import Model
from ..settings import SettingsError
from ..types import InferRequest, to_np_dtype
from ._common import (
    ModelLoadError,
    as_dtype,
    check_rank,
    declare,
    extra,
    framework_error,
    model_path,
    respond,
    set_platform,
)

logger = logging.getLogger("modelport")

# torch.export.load keeps the archive being read in a global (two at once fail with "_CURRENT_DESERIALIZER
# is already set"), and models load concurrently: one load at a time in this process.
_LOAD_LOCK = threading.Lock()

# torch dtype name -> Open Inference Protocol datatype
_DATATYPES = {
    "float32": "FP32",
    "float64": "FP64",
    "float16": "FP16",
    "int64": "INT64",
    "int32": "INT32",
    "int16": "INT16",
    "int8": "INT8",
    "uint8": "UINT8",
    "bool": "BOOL",
}


class TorchModel(Model):
    """Serves a TorchScript or torch.export model."""

    # One input is taken under any name, as KServe's and MLServer's servers do; metadata keeps the declared one.
    single_input_any_name = True

    def load(self) -> bool:
        torch = import_optional("torch", extra="torch")
        self._torch = torch
        device = str(extra(self).get("device", "cpu"))
        try:
            self._device = torch.device(device)
        except RuntimeError as exc:
            raise SettingsError(f"Model {self.name}: parameters.extra.device {device!r}: {exc}") from None
        if self._device.type == "cuda" and not torch.cuda.is_available():
            raise SettingsError(f"Model {self.name}: parameters.extra.device is {device!r} but torch sees no CUDA device")
        path = model_path(self, "torch")
        try:
            with _LOAD_LOCK:
                self._module, inputs, outputs, platform = _load_file(torch, path, self._device)
        except (RuntimeError, ValueError, OSError, zipfile.BadZipFile, KeyError) as exc:
            raise ModelLoadError(
                f"Cannot load PyTorch model {path}: {type(exc).__name__}: {exc} (expected a TorchScript archive "
                "or a torch.export .pt2 archive; a state dict saved with torch.save needs its own Model class)"
            ) from exc
        if platform == "pytorch_torchscript":
            logger.info("Model %s: TorchScript is deprecated by PyTorch; torch.export (.pt2) is its successor", self.name)
            self._arg_names = _forward_arg_names(self._module)
        else:
            self._arg_names = [m["name"] for m in inputs]
        set_platform(self, platform)
        if not _is_graph_module(self._module):
            self._module.eval()
        self._metadata = {m["name"]: m for m in inputs}
        declare(self, inputs, outputs)
        self.ready = True
        return self.ready

    # -- inference -----------------------------------------------------------------------------
    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        args, kwargs = self._arguments(payload)
        torch = self._torch
        try:
            with torch.inference_mode():
                result = self._module(*args, **kwargs)
        except (RuntimeError, ValueError, TypeError, IndexError, AssertionError) as exc:
            raise framework_error(self, exc, _client_message(exc)) from exc
        return respond(self, payload, self._outputs(result))

    def _arguments(self, payload: Any) -> tuple[list, dict]:
        if isinstance(payload, InferRequest):
            if not payload.inputs:
                raise InvalidInput("The request has no inputs")
            named = [(t.name, t.as_numpy()) for t in payload.inputs]
            v1 = False
        else:
            named = self._v1_arrays(payload)
            v1 = True
        tensors = [(name, self._tensor(name, array, v1)) for name, array in named]
        names = [name for name, _ in tensors]
        if self._arg_names and all(n in self._arg_names for n in names):
            by_name = dict(tensors)
            missing = [n for n in self._arg_names if n not in by_name]
            if missing and self._metadata:
                raise InvalidInput(f"Model {self.name} needs input(s) {', '.join(map(repr, missing))}")
            # In forward's order, so that positional-only graphs (torch.export) get them right.
            return [by_name[n] for n in self._arg_names if n in by_name], {}
        return [t for _, t in tensors], {}

    def _v1_arrays(self, payload: dict) -> list[tuple[str, np.ndarray]]:
        instances = payload.get("instances", payload.get("inputs"))
        if isinstance(instances, dict):
            return [(str(k), _rectangular(str(k), v)) for k, v in instances.items()]
        if instances and all(isinstance(row, dict) for row in instances):
            keys = list(instances[0])
            try:
                return [(k, _rectangular(k, [row[k] for row in instances])) for k in keys]
            except KeyError as exc:
                raise InvalidInput(f"Every instance needs key {exc.args[0]!r}") from None
        name = self._arg_names[0] if len(self._arg_names) == 1 else "input-0"
        return [(name, _rectangular(name, instances))]

    def _tensor(self, name: str, array: np.ndarray, v1: bool) -> Any:
        torch = self._torch
        meta = self._metadata.get(name)
        if meta is not None:
            check_rank(name, array, meta["shape"])
        if array.dtype.kind in "OUS":
            raise InvalidInput(f"Input {name!r}: PyTorch models take numeric tensors, got text")
        if meta is not None and v1:
            array = as_dtype(name, array, to_np_dtype(meta["datatype"]))
        elif v1 and array.dtype == np.float64:
            array = array.astype(np.float32)
        if not array.flags.writeable:  # torch refuses to share read-only memory (binary request bodies)
            array = array.copy()
        tensor = torch.from_numpy(array)
        return tensor.to(self._device) if self._device.type != "cpu" else tensor

    def _outputs(self, result: Any) -> dict[str, np.ndarray]:
        if isinstance(result, dict):
            return {str(k): self._array(v) for k, v in result.items()}
        if isinstance(result, (tuple, list)):
            return {f"output-{i}": self._array(v) for i, v in enumerate(result)}
        return {"output-0": self._array(result)}

    def _array(self, value: Any) -> np.ndarray:
        if isinstance(value, self._torch.Tensor):
            return value.detach().cpu().numpy()
        return np.asarray(value)


def _load_file(torch: Any, path: Any, device: Any) -> tuple[Any, list[dict], list[dict], str]:
    """(module, input metadata, output metadata, platform) from a .pt2 or TorchScript archive."""
    if _is_export_archive(path):
        program = torch.export.load(str(path))
        inputs, outputs = _export_metadata(program)
        return program.module().to(device), inputs, outputs, "pytorch_export"
    with warnings.catch_warnings():
        # PyTorch deprecates TorchScript; serving an existing archive is still what the user asked for.
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.* is deprecated", category=DeprecationWarning)
        return torch.jit.load(str(path), map_location=device), [], [], "pytorch_torchscript"


def _client_message(exc: BaseException) -> str:
    """The error itself, without the TorchScript interpreter's traceback of the model's code."""
    text = str(exc).strip()
    if "Traceback of TorchScript" in text:
        logger.debug("TorchScript error: %s", text)
        lines = [line for line in text.splitlines() if line.strip()]
        return lines[-1].strip() if lines else type(exc).__name__
    return text


def _is_export_archive(path: Any) -> bool:
    """A torch.export archive (``.pt2``, or a zip holding ``serialized_exported_program.json``)."""
    if str(path).endswith(".pt2"):
        return True
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith("serialized_exported_program.json") or "/models/" in n and n.endswith(".json") for n in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _is_graph_module(module: Any) -> bool:
    # An exported program's module() refuses .eval()/.train() (its mode is fixed at export time).
    return type(module).__module__.startswith("torch.fx") or "GraphModule" in type(module).__name__


def _forward_arg_names(module: Any) -> list[str]:
    try:
        return [a.name for a in module.forward.schema.arguments][1:]  # drop self
    except AttributeError:
        try:
            return [p for p in inspect.signature(module.forward).parameters]
        except (TypeError, ValueError):
            return []


def _export_metadata(program: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """V2 metadata from an ExportedProgram: user inputs and (tensor) outputs with symbolic dims as -1."""
    signature = program.graph_signature
    user_inputs = list(signature.user_inputs)
    nodes = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    inputs = [m for m in (_node_meta(name, nodes.get(name)) for name in user_inputs) if m is not None]
    if len(inputs) != len(user_inputs):
        inputs = []  # some input is not a plain tensor: describe none rather than half
    outputs = []
    output_node = next((n for n in program.graph.nodes if n.op == "output"), None)
    if output_node is not None:
        values = output_node.args[0] if output_node.args else ()
        values = list(values) if isinstance(values, (tuple, list)) else [values]
        spec = program.call_spec.out_spec
        names = _output_names(spec)
        user_count = len(signature.user_outputs)
        values = values[-user_count:] if user_count else values
        if names is not None and len(names) == len(values):
            outputs = [m for m in (_node_meta(n, v) for n, v in zip(names, values)) if m is not None]
            if len(outputs) != len(values):
                outputs = []
    return inputs, outputs


def _output_names(spec: Any) -> list[str] | None:
    """How TorchModel names outputs (see _outputs), read from the exported output's pytree spec."""
    if spec is None:
        return None
    if spec.is_leaf():  # a single tensor
        return ["output-0"]
    if spec.type is dict:
        return [str(k) for k in spec.context]
    if spec.type in (tuple, list):
        return [f"output-{i}" for i in range(spec.num_children)]
    return None


def _node_meta(name: str, node: Any) -> dict[str, Any] | None:
    value = getattr(node, "meta", {}).get("val") if node is not None else None
    if value is None or not hasattr(value, "shape") or not hasattr(value, "dtype"):
        return None
    datatype = _DATATYPES.get(str(value.dtype).replace("torch.", ""))
    if datatype is None:
        return None
    shape = [d if isinstance(d, int) else -1 for d in value.shape]
    return {"name": name, "datatype": datatype, "shape": shape}


def _rectangular(name: str, values: Any) -> np.ndarray:
    try:
        return np.asarray(values)
    except ValueError as exc:
        raise InvalidInput(f"Input {name!r}: instances do not form a rectangular array: {exc}") from None
