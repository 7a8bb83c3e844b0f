"""The request being served, as a context variable: its id, model, version and protocol for logs,
and (only while tracing) the marks the tracer turns into stage spans."""

from __future__ import annotations

import random
import time
from contextvars import ContextVar

REQUEST_ID_HEADER = "x-request-id"


class RequestInfo:
    __slots__ = ("request_id", "protocol", "model", "version", "start", "entered", "left", "stages", "span", "traceparent")

    def __init__(self, request_id: str, protocol: str):
        self.request_id = request_id
        self.protocol = protocol
        self.model: str | None = None
        self.version: str | None = None
        self.start = 0.0  # perf_counter at arrival; set when something needs durations
        self.entered = 0.0  # perf_counter when the data plane took the request (decoded)
        self.left = 0.0  # perf_counter when the data plane was done with it (before encoding)
        self.stages: list | None = None  # [(stage, end perf_counter, seconds)] while tracing
        self.span = None  # the request's tracing span, while tracing
        self.traceparent: str | None = None  # the W3C header of that span, for calls made on its behalf


_bits = random.getrandbits
current: ContextVar[RequestInfo | None] = ContextVar("modelport_request", default=None)


def new_request_id() -> str:
    """A random 128-bit id as 32 hex digits. Python's generator (seeded from the OS, reseeded in forked
    children) is enough for ids and costs no system call: os.urandom cost 2% of a request's CPU."""
    return f"{_bits(128):032x}"


def begin(request_id: str | None, protocol: str) -> RequestInfo:
    info = RequestInfo(request_id or new_request_id(), protocol)
    current.set(info)
    return info


def mark_stage(stage: str, seconds: float) -> None:
    """Record a stage for the current request's trace (no-op unless tracing collects stages)."""
    info = current.get()
    if info is not None and info.stages is not None:
        info.stages.append((stage, time.perf_counter(), seconds))
