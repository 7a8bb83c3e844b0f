"""The gRPC methods of Triton's system shared-memory extension (modelport/shm.py): a mixin of the
inference servicer, so the servicer gains them with one base class."""

from __future__ import annotations

from typing import Any

import grpc.aio

from ... import shm
from ...errors import Unimplemented
from ...wire.grpc import grpc_predict_v2_pb2 as pb


class SharedMemoryMethods:
    """SystemSharedMemoryStatus, Register and Unregister over ``self.dataplane.shared_memory``."""

    dataplane: Any

    async def SystemSharedMemoryStatus(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        regions = self._shared_memory(context).status(request.name or None)
        return pb.SystemSharedMemoryStatusResponse(regions={r["name"]: r for r in regions})

    async def SystemSharedMemoryRegister(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._shared_memory(context).register(request.name, request.key, request.offset, request.byte_size)
        return pb.SystemSharedMemoryRegisterResponse()

    async def SystemSharedMemoryUnregister(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._shared_memory(context).unregister(request.name or None)  # an empty name: every region
        return pb.SystemSharedMemoryUnregisterResponse()

    def _shared_memory(self, context: grpc.aio.ServicerContext) -> shm.SharedMemory:
        shared = self.dataplane.shared_memory
        if shared is None:
            raise Unimplemented("System shared memory is not served here")
        shared.admit(shm.is_local_peer(context.peer()))
        return shared


__all__ = ["SharedMemoryMethods"]
