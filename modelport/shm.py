"""Triton's system shared-memory extension: tensors that travel through /dev/shm instead of the socket.

A client on this host creates a POSIX shared-memory object, registers a region of it under a name
(``register``: an admin door), and then names the region in a tensor's parameters
(``shared_memory_region``, ``shared_memory_offset``, ``shared_memory_byte_size``): an input is read
from it, a requested output is written into it and answered without data. This is what tritonclient's
``tritonclient.utils.shared_memory`` and its ``set_shared_memory`` calls do.

What may be mapped is limited, because registering maps memory of the server's host:

- the extension is off unless the server turns it on (``system_shared_memory``: ``local`` admits only
  loopback connections, to the doors and to tensors in shared memory alike; ``on`` any caller the doors
  admit, as Triton's ``--allow-client-shm=true``);
- a key names an object directly under /dev/shm (``/name`` or ``name``: no other directory, no ``..``,
  no symbolic link: opened with O_NOFOLLOW), and it must be a regular file the server may read and write;
- the regions together map at most ``shared_memory_max_bytes``, and at most MAX_REGIONS of them.

A region stays mapped while requests use it: unregistering drops it from the table at once, and the
mapping is released with its last reference: at once when no request uses it, else when the last one
in flight (or an array a model kept) lets go. Shutdown unregisters every region.

Inputs are read-only views of the mapping (no copy), as binary REST inputs are views of the body;
outputs are copied into the region once. The size of the underlying object is checked again on every
use, so a client that shrank it gets an error rather than the server a SIGBUS; one that shrinks it while
a model reads it can still fault the server, which is why only trusted local clients may register.
"""

from __future__ import annotations

import mmap
import os
import stat
import threading
from typing import Any

import orjson

from .errors import ErrorCode, InvalidInput, ModelportError, PermissionDenied, Unimplemented
from .types import InferOutput, InferRequest, InferResponse, to_np_dtype
from .wire.raw import array_from_raw, array_to_raw

SHM_DIR = "/dev/shm"
MAX_REGIONS = 256
REGION, OFFSET, BYTE_SIZE = "shared_memory_region", "shared_memory_offset", "shared_memory_byte_size"
MODES = ("off", "local", "on")
_PARAMETERS = (REGION, OFFSET, BYTE_SIZE)


class RegionExists(ModelportError):
    """A region of that name is registered already (gRPC ALREADY_EXISTS; REST 400, as Triton answers)."""

    code = ErrorCode.ALREADY_EXISTS


class RegionNotFound(ModelportError):
    code = ErrorCode.NOT_FOUND

    def __init__(self, name: str):
        super().__init__(f"Unable to find system shared memory region: {name!r}")


class Region:
    """One registered region: ``byte_size`` bytes at ``offset`` of the object ``key``, mapped."""

    __slots__ = ("name", "key", "offset", "byte_size", "_fd", "_map", "_start", "view")

    def __init__(self, name: str, key: str, offset: int, byte_size: int, fd: int, mapped: mmap.mmap, start: int):
        self.name, self.key, self.offset, self.byte_size = name, key, offset, byte_size
        self._fd, self._map, self._start = fd, mapped, start
        self.view = memoryview(mapped)[start:start + byte_size]  # the region's bytes

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "offset": self.offset, "byte_size": self.byte_size}

    def span(self, tensor: str, offset: int, byte_size: int) -> memoryview:
        """``byte_size`` bytes at ``offset`` of the region, after checking they lie inside it and that
        the object still holds them (a shrunken object would fault on access)."""
        if offset < 0 or byte_size < 0:
            raise InvalidInput(f"Tensor {tensor!r}: shared-memory offset and byte size must not be negative")
        if offset + byte_size > self.byte_size:
            raise InvalidInput(f"Tensor {tensor!r}: {byte_size} bytes at offset {offset} run past the end of shared "
                               f"memory region {self.name!r} ({self.byte_size} bytes)")
        size = os.fstat(self._fd).st_size
        if size < self.offset + self.byte_size:
            raise InvalidInput(f"Shared memory region {self.name!r}: its object {self.key!r} shrank to {size} bytes")
        return self.view[offset:offset + byte_size]

    def __del__(self) -> None:
        # The last reference is gone (unregistered, no request in flight): the mapping and its view go
        # with this object; the descriptor (kept for the size check in span) closes here.
        try:
            os.close(self._fd)
        except OSError:
            pass


class SharedMemory:
    """The registered regions of one server process."""

    def __init__(self, mode: str = "off", max_bytes: int = 1024**3):
        if mode not in MODES:
            raise ValueError(f"system_shared_memory is one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        self.max_bytes = max_bytes
        self.regions: dict[str, Region] = {}
        self._lock = threading.Lock()  # register and unregister may run in several threads (gRPC, tests)

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def admit(self, local: bool) -> None:
        """Refuse a caller when the extension is off, or (mode ``local``) when it is not on this host."""
        if self.mode == "off":
            raise Unimplemented("System shared memory is off on this server (setting system_shared_memory: off); "
                                "it serves clients on the server's own host and must be turned on")
        if self.mode == "local" and not local:
            raise PermissionDenied("System shared memory is served to clients on this host only "
                                   "(system_shared_memory: local)")

    # -- the doors ---------------------------------------------------------------------------------
    def register(self, name: Any, key: Any, offset: Any, byte_size: Any) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidInput("A shared memory region needs a name")
        path = _object_path(key)
        for what, value in (("offset", offset), ("byte_size", byte_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidInput(f"Shared memory region {name!r}: {what} must be a non-negative integer, got {value!r}"[:300])
        if byte_size == 0:
            raise InvalidInput(f"Shared memory region {name!r}: byte_size must be at least 1")
        with self._lock:
            if name in self.regions:
                raise RegionExists(f"Shared memory region {name!r} is registered already")
            if len(self.regions) >= MAX_REGIONS:
                raise InvalidInput(f"At most {MAX_REGIONS} shared memory regions may be registered; unregister one first")
            mapped = sum(r.byte_size for r in self.regions.values())
            if mapped + byte_size > self.max_bytes:
                raise InvalidInput(f"Shared memory region {name!r}: {byte_size} bytes more would map {mapped + byte_size} "
                                   f"bytes, over this server's limit of {self.max_bytes} (shared_memory_max_bytes)")
            self.regions[name] = _map(name, key, path, offset, byte_size)

    def unregister(self, name: str | None = None) -> None:
        """One region, or (no name) every region. An unknown name is not an error (as in Triton)."""
        with self._lock:
            for n in [name] if name else list(self.regions):
                # Unmapped as this drops the last reference; a request in flight holds its own until it ends.
                self.regions.pop(n, None)

    def status(self, name: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            if not name:
                return [r.status() for r in self.regions.values()]
            region = self.regions.get(name)
        if region is None:
            raise RegionNotFound(name)
        return [region.status()]

    def close(self) -> None:
        self.unregister()

    def region(self, name: Any) -> Region:
        region = self.regions.get(name) if isinstance(name, str) else None
        if region is None:
            raise RegionNotFound(str(name))
        return region


def _object_path(key: Any) -> str:
    """The path of a shared-memory key under /dev/shm, as shm_open finds it; anything else is refused."""
    if not isinstance(key, str) or not key:
        raise InvalidInput("A shared memory region needs a key (the name of an object under /dev/shm)")
    name = key.lstrip("/")
    if not name or "/" in name or name in (".", "..") or "\0" in name or len(name.encode()) > 255:
        raise InvalidInput(f"Shared memory key {key!r} must name an object directly under {SHM_DIR} "
                           "(such as '/my_region'), as shm_open takes it"[:300])
    return os.path.join(SHM_DIR, name)


def _map(name: str, key: str, path: str, offset: int, byte_size: int) -> Region:
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise InvalidInput(f"Shared memory region {name!r}: no shared memory object {key!r} ({path})") from None
    except OSError as exc:  # ELOOP (a symbolic link), EACCES, EISDIR, ...
        raise InvalidInput(f"Shared memory region {name!r}: cannot open {key!r} ({path}): {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput(f"Shared memory region {name!r}: {key!r} is not a shared memory object")
        if offset + byte_size > info.st_size:
            raise InvalidInput(f"Shared memory region {name!r}: {byte_size} bytes at offset {offset} run past the end "
                               f"of {key!r} ({info.st_size} bytes)")
        start = offset % mmap.ALLOCATIONGRANULARITY  # mmap's own offset must be page-aligned
        mapped = mmap.mmap(fd, start + byte_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=offset - start)
    except BaseException as exc:
        os.close(fd)
        if isinstance(exc, OSError):
            raise InvalidInput(f"Shared memory region {name!r}: cannot map {key!r}: {exc.strerror}") from None
        raise
    return Region(name, key, offset, byte_size, fd, mapped, start)


# -- the doors' actions (REST bodies; gRPC messages are read by the servicer) --------------------------
def rest_action(shared: SharedMemory | None, action: str, region: str | None, body: bytes, local: bool) -> Any:
    """``status`` (a list, as Triton answers), ``register`` (body ``{"key", "offset", "byte_size"}``) or
    ``unregister`` (no region: every one); the JSON answer."""
    if shared is None:
        raise Unimplemented("System shared memory is not served here")
    shared.admit(local)
    if action == "status":
        return shared.status(region)
    if action == "unregister":
        shared.unregister(region)
        return {}
    try:
        doc = orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"Register body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInput('Register needs a JSON body {"key": ..., "offset": ..., "byte_size": ...}')
    shared.register(region, doc.get("key"), doc.get("offset", 0), doc.get("byte_size"))
    return {}


# -- tensors in shared memory, per request ---------------------------------------------------------
def bind(shared: SharedMemory | None, request: InferRequest, local: Any = True) -> "Binding | None":
    """Read the request's inputs that name a region, and note the outputs asked for in one; None (the
    usual case, one dictionary look-up per tensor) when no tensor names a region. ``local``: whether
    the caller is on this host (a bool, or a callable asked only when a tensor names a region)."""
    for tensor in request.inputs:
        if REGION in tensor.parameters:
            break
    else:
        outputs = request.request_outputs
        if not outputs or not any(REGION in o.parameters for o in outputs):
            return None
    if shared is None:
        raise Unimplemented("System shared memory is not served here (setting system_shared_memory: off)")
    shared.admit(local() if callable(local) else bool(local))
    used: list[Region] = []  # held until the response is written: the regions stay mapped meanwhile
    for tensor in request.inputs:
        params = tensor.parameters
        if REGION not in params:
            continue
        if tensor._array is not None or tensor._data is not None:  # as Triton refuses it
            raise InvalidInput(f"Input {tensor.name!r} has data and a shared memory region; send one or the other")
        region, offset, byte_size = _where(shared, tensor.name, params)
        array = array_from_raw(region.span(tensor.name, offset, byte_size), tensor.datatype, tensor.shape, tensor.name)
        if array.dtype.kind != "O":
            array.flags.writeable = False  # a view of the client's memory: the model reads it, never writes
        tensor._array = array
        # The model sees a plain input: no region parameters (an echo that copies them would otherwise
        # answer "in shared memory" for an output nobody asked there).
        tensor.parameters = {k: v for k, v in params.items() if k not in _PARAMETERS}
        used.append(region)
    outputs = {}
    for out in request.request_outputs or ():
        if REGION in out.parameters:
            region, offset, byte_size = _where(shared, out.name, out.parameters)
            region.span(out.name, offset, byte_size)  # checked before the model runs
            outputs[out.name] = (region, offset, byte_size)
    return Binding(used, outputs)


def _where(shared: SharedMemory, tensor: str, params: dict) -> tuple[Region, int, int]:
    name = params.get(REGION)
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"Tensor {tensor!r}: {REGION} must be a region name")
    if BYTE_SIZE not in params:
        raise InvalidInput(f"Tensor {tensor!r}: {REGION} needs {BYTE_SIZE} too")
    byte_size, offset = params[BYTE_SIZE], params.get(OFFSET, 0)
    for what, value in ((BYTE_SIZE, byte_size), (OFFSET, offset)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidInput(f"Tensor {tensor!r}: {what} must be an integer, got {value!r}"[:300])
    return shared.region(name), offset, byte_size


class Binding:
    """A request's regions: the inputs read from them, the outputs to write into them."""

    __slots__ = ("regions", "outputs")

    def __init__(self, regions: list[Region], outputs: dict[str, tuple[Region, int, int]]):
        self.regions = regions
        self.outputs = outputs

    def write(self, response: InferResponse) -> InferResponse:
        """Copy each output asked for in shared memory into its region; the answer carries its name,
        datatype, shape and the region's parameters, no data. A new response: the one given may be a
        cached answer that others share."""
        if not self.outputs:
            return response
        outputs = []
        for tensor in response.outputs:
            spot = self.outputs.get(tensor.name)
            if spot is None:
                outputs.append(tensor)
                continue
            region, offset, byte_size = spot
            array = tensor.as_numpy()
            if tensor.datatype != "BYTES":
                array = array.astype(to_np_dtype(tensor.datatype), copy=False)
            raw = array_to_raw(array, tensor.datatype)
            if len(raw) > byte_size:
                raise InvalidInput(f"Output {tensor.name!r}: {len(raw)} bytes do not fit the {byte_size} bytes given in "
                                   f"shared memory region {region.name!r}")
            region.span(tensor.name, offset, len(raw))[:] = raw
            params = {k: v for k, v in tensor.parameters.items() if k not in ("binary_data", "binary_data_size")}
            params.update({REGION: region.name, BYTE_SIZE: len(raw)})
            if offset:
                params[OFFSET] = offset
            # No data: the encoders send a tensor that names a region without any (its shape is enough).
            outputs.append(InferOutput(tensor.name, list(array.shape), tensor.datatype, None, params))
        return InferResponse(response.id, response.model_name, outputs, model_version=response.model_version,
                             parameters=response.parameters)


def refuse(request: InferRequest, where: str) -> None:
    """For doors that cannot answer in shared memory (streams): a clear error, not a silent fallback."""
    if any(REGION in t.parameters for t in request.inputs) or any(REGION in o.parameters for o in request.request_outputs or ()):
        raise InvalidInput(f"Tensors in shared memory are served by infer only, not by {where}")


def is_local_address(host: str | None) -> bool:
    """A REST client's address (ASGI scope["client"][0]) on this host."""
    if not host:
        return False
    return host == "::1" or host.startswith("127.") or host.startswith("::ffff:127.")


def is_local_peer(peer: str) -> bool:
    """A gRPC peer (context.peer(): "ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "unix:...") on this host."""
    if peer.startswith("unix:"):
        return True
    if peer.startswith("ipv4:"):
        return peer[5:].startswith("127.")
    if peer.startswith("ipv6:"):
        host = peer[5:].replace("%5B", "[").replace("%5D", "]").rsplit(":", 1)[0].strip("[]")
        return is_local_address(host)
    return False


__all__ = ["Binding", "MAX_REGIONS", "Region", "RegionExists", "RegionNotFound", "SharedMemory", "bind", "refuse"]
