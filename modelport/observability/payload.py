"""Payload logging, as KServe's inference logger does it: each request and/or response of a model
goes out as a CloudEvent (binary mode over HTTP, structured JSON lines to a file).

The data plane only puts (kind, id, payload) on a bounded queue; one task per model encodes and sends.
A full queue drops the event and counts it (``modelport_payload_log_events_total{outcome="dropped"}``),
so a slow or dead sink never slows or fails inference. CloudEvent attributes follow KServe's:
``type`` ``org.kubeflow.serving.inference.request`` / ``.response``, ``id`` the request id,
``source`` (settable), and the extensions ``inferenceservicename``, ``endpoint`` and ``component``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from datetime import datetime, timezone
from typing import Any

from ..types import InferRequest, InferResponse
from ..wire import v2_json

logger = logging.getLogger("modelport")

REQUEST_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_TYPE = "org.kubeflow.serving.inference.response"
MODES = ("all", "request", "response")
_KEYS = {"url", "file", "mode", "queue_size", "source", "timeout", "endpoint", "component"}


def check_config(model: str, config: Any) -> None:
    """Raise ValueError naming what is wrong with a model's ``payload_log`` setting."""
    if not isinstance(config, dict):
        raise ValueError(f"Model {model}: payload_log must be an object such as {{\"url\": ..., \"mode\": \"all\"}}")
    unknown = sorted(set(config) - _KEYS)
    if unknown:
        raise ValueError(f"Model {model}: unknown payload_log key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
    if config and not (config.get("url") or config.get("file")):
        raise ValueError(f"Model {model}: payload_log needs a \"url\" or a \"file\" to send events to")
    if config.get("mode", "all") not in MODES:
        raise ValueError(f"Model {model}: payload_log mode must be all, request or response, got {config.get('mode')!r}")
    size = config.get("queue_size", 1000)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"Model {model}: payload_log queue_size must be a positive integer, got {size!r}")


def _encode(payload: Any) -> bytes:
    if isinstance(payload, (bytes, bytearray, memoryview)):  # a V1 body that is not JSON goes as it came
        return bytes(payload)
    if isinstance(payload, InferRequest):
        return v2_json.encode_request(payload)[0]
    if isinstance(payload, InferResponse):
        return v2_json.encode_response(payload)[0]
    return v2_json.dumps(payload)


class PayloadLogger:
    def __init__(self, model: str, version: str | None, config: dict, counter: Any):
        check_config(model, config)
        self.model = model
        self.version = version
        self.url = config.get("url")
        self.file = config.get("file")
        mode = config.get("mode", "all")
        self.log_requests = mode in ("all", "request")
        self.log_responses = mode in ("all", "response")
        self.queue_size = config.get("queue_size", 1000)
        self.source = config.get("source") or f"modelport/{model}"
        self.endpoint = config.get("endpoint") or ""
        self.component = config.get("component") or "predictor"
        self.timeout = float(config.get("timeout", 5.0))
        self._sent, self._dropped, self._failed = (counter.labels(model, o) for o in ("sent", "dropped", "failed"))
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._client: Any = None
        self._fh: Any = None

    # -- the request path: never awaits, never raises ------------------------------------------
    def request(self, request_id: str, payload: Any) -> None:
        if self.log_requests:
            self._put(REQUEST_TYPE, request_id, payload)

    def response(self, request_id: str, payload: Any) -> None:
        if self.log_responses:
            self._put(RESPONSE_TYPE, request_id, payload)

    def _put(self, kind: str, request_id: str, payload: Any) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue(self.queue_size)
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"payload-log-{self.model}")
        try:
            self._queue.put_nowait((kind, request_id, payload, datetime.now(timezone.utc)))
        except asyncio.QueueFull:
            self._dropped.inc()

    # -- the sender ----------------------------------------------------------------------------
    async def _run(self) -> None:
        queue = self._queue
        while True:
            kind, request_id, payload, when = await queue.get()
            try:
                await self._send(kind, request_id, payload, when)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a sink's failure is counted, never raised
                self._failed.inc()
                logger.debug("Payload log for %s failed: %s", self.model, exc)
            else:
                self._sent.inc()
            finally:
                queue.task_done()

    def _attributes(self, kind: str, request_id: str, when: datetime) -> dict[str, str]:
        return {
            "specversion": "1.0",
            "id": request_id,
            "type": kind,
            "source": self.source,
            "time": when.isoformat().replace("+00:00", "Z"),
            "inferenceservicename": self.model,
            "endpoint": self.endpoint,
            "component": self.component,
            **({"modelversion": self.version} if self.version else {}),
        }

    async def _send(self, kind: str, request_id: str, payload: Any, when: datetime) -> None:
        raw = isinstance(payload, (bytes, bytearray, memoryview))
        data = _encode(payload)
        content_type = "application/octet-stream" if raw else "application/json"
        attributes = self._attributes(kind, request_id, when)
        if self.file:
            event = dict(attributes, datacontenttype=content_type)
            if raw:
                event["data_base64"] = base64.b64encode(data).decode()
            else:
                event["data"] = json.loads(data)
            if self._fh is None:
                self._fh = open(self.file, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self._fh.write(json.dumps(event) + "\n")
            self._fh.flush()
        if self.url:
            if self._client is None:
                import httpx

                self._client = httpx.AsyncClient(timeout=self.timeout)
            headers = {f"ce-{k}": v for k, v in attributes.items()}
            headers["content-type"] = content_type
            response = await self._client.post(self.url, content=data, headers=headers)
            if response.status_code >= 300:
                raise RuntimeError(f"sink answered {response.status_code}")

    async def close(self, grace: float = 2.0) -> None:
        """Send what is queued (for up to ``grace`` seconds), then stop."""
        if self._task is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._queue.join(), grace)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None
