"""Transformer mode: a model whose ``predict`` calls a remote predictor, as in KServe.

The composition root gives every model that has a :class:`~modelport.model.PredictorConfig` (its
own, or one built from the server's ``predictor_*`` settings) a :class:`Predictor`; the base
``Model.predict`` then sends the (pre-processed) payload there with the client that matches the
protocol — ``v1``: ``POST /v1/models/{name}:predict`` with the dict; ``v2``: REST V2 infer;
``grpc-v2``: gRPC ModelInfer — so a transformer overrides only ``preprocess``/``postprocess``.

The client is created on first use, on the running loop, and closed when the model stops. Tracing
and identity headers are forwarded; the predictor's errors come back as an
:class:`~modelport.errors.InferenceError` carrying the predictor's status and message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from ..client import (
    AsyncGRPCClient,
    AsyncRESTClient,
    ClientError,
    ConnectionFailed,
    InvalidResponse,
    RequestTimeout,
    RESTConfig,
)
from ..errors import InferenceError, InvalidInput
from ..model import Model, PredictorConfig
from ..observability import context as request_context
from ..types import InferRequest, InferResponse
from ..wire import v2_json

if TYPE_CHECKING:
    from ..settings import ServerSettings

logger = logging.getLogger("modelport")

# Request headers a transformer passes on to its predictor; the rest belong to this hop.
FORWARDED_HEADERS = ("x-request-id", "traceparent", "tracestate", "authorization")
# How often the predictor's readiness is asked while someone watches this model's readiness.
HEALTH_INTERVAL = 2.0


def config_from_settings(settings: ServerSettings) -> PredictorConfig | None:
    if not settings.predictor_host:
        return None
    return PredictorConfig(
        predictor_host=settings.predictor_host,
        predictor_protocol=settings.predictor_protocol,
        predictor_use_ssl=settings.predictor_use_ssl,
        predictor_request_timeout_seconds=settings.predictor_request_timeout_seconds,
        predictor_request_retries=settings.predictor_request_retries,
        predictor_health_check=settings.predictor_health_check,
    )


def attach_predictor(model: Model, settings: ServerSettings | None = None) -> None:
    """Give ``model`` its predictor: from its own ``predictor_config``, else from the server settings."""
    host = getattr(model, "predictor_host", None)
    if model.predictor_config is None and isinstance(host, str) and host:
        # A KServe-style script set self.predictor_host (and maybe self.protocol) in __init__.
        protocol = getattr(model, "protocol", None)
        protocol = getattr(protocol, "value", protocol)  # a PredictorProtocol or its string
        if protocol not in ("v1", "v2", "grpc-v2"):
            protocol = settings.predictor_protocol if settings is not None else "v1"
        model.predictor_config = PredictorConfig(host, protocol)
        if settings is not None:  # timeouts, retries, TLS from the server's settings
            c = model.predictor_config
            c.predictor_use_ssl = settings.predictor_use_ssl
            c.predictor_request_timeout_seconds = settings.predictor_request_timeout_seconds
            c.predictor_request_retries = settings.predictor_request_retries
            c.predictor_health_check = settings.predictor_health_check
    if model.predictor_config is None and settings is not None:
        model.predictor_config = config_from_settings(settings)
    if model.predictor_config is not None and model._predictor is None:
        model._predictor = Predictor(model.name, model.predictor_config)


class Predictor:
    """One model's link to its predictor: one client, created lazily, closed by :meth:`close`."""

    def __init__(self, model_name: str, config: PredictorConfig, health_interval: float | None = None):
        if config.predictor_protocol not in ("v1", "v2", "grpc-v2"):
            raise ValueError(f"predictor_protocol must be v1, v2 or grpc-v2, got {config.predictor_protocol!r}")
        self.model_name = model_name
        self.config = config
        self.health_interval = HEALTH_INTERVAL if health_interval is None else health_interval
        self._client: AsyncRESTClient | AsyncGRPCClient | None = None
        self._ready: bool | None = None
        self._watch: asyncio.Task | None = None

    @property
    def host(self) -> str:
        return self.config.predictor_host

    def _get_client(self) -> AsyncRESTClient | AsyncGRPCClient:
        if self._client is None:
            c = self.config
            timeout, retries = c.predictor_request_timeout_seconds, c.predictor_request_retries
            if c.predictor_protocol == "grpc-v2":
                target = c.predictor_host.split("://", 1)[-1]
                self._client = AsyncGRPCClient(target, use_ssl=c.predictor_use_ssl, timeout=timeout, retries=retries)
            else:
                config = RESTConfig(protocol=c.predictor_protocol, timeout=timeout, retries=retries, https=c.predictor_use_ssl)
                self._client = AsyncRESTClient(config)
        return self._client

    # -- inference -----------------------------------------------------------------------------
    async def infer(self, payload: Any, headers: dict | None = None) -> dict | InferResponse:
        forward = {k: v for k in FORWARDED_HEADERS if (v := (headers or {}).get(k))}
        info = request_context.current.get()
        if info is not None:  # this request's id (taken or made) and, while tracing, its span as the parent
            forward["x-request-id"] = info.request_id
            if info.traceparent is not None:
                forward["traceparent"] = info.traceparent
        protocol = self.config.predictor_protocol
        client = self._get_client()
        try:
            if protocol == "v1":
                if not isinstance(payload, dict):
                    raise InvalidInput(
                        f"The predictor speaks V1 and needs a dict such as {{\"instances\": [...]}}, not "
                        f"{type(payload).__name__}; send V1 to model {self.model_name} or convert it in preprocess"
                    )
                return await client.infer(self.host, payload, self.model_name, headers=forward)
            request = self._as_request(payload)
            if protocol == "v2":
                return await client.infer(self.host, request, headers=forward)
            return await client.infer(request, headers=forward)
        except ClientError as exc:
            raise self._surface(exc) from exc

    def _as_request(self, payload: Any) -> InferRequest:
        if isinstance(payload, InferRequest):
            # Addressed to the predictor's model of the same name; the request id travels with it.
            return InferRequest(
                self.model_name, payload.inputs, payload.id, parameters=payload.parameters,
                request_outputs=payload.request_outputs,
            )
        if isinstance(payload, dict) and "inputs" in payload:
            return v2_json.request_from_dict(payload, self.model_name)
        raise InvalidInput(
            f"The predictor speaks {self.config.predictor_protocol} and needs an InferRequest (or a V2 dict with "
            f"\"inputs\"), not {type(payload).__name__}; send V2 to model {self.model_name} or convert it in preprocess"
        )

    def _surface(self, exc: ClientError) -> InferenceError:
        """The predictor's failure as this server's error: its status and message, and where it came from."""
        if isinstance(exc, RequestTimeout):
            status = 504
        elif isinstance(exc, ConnectionFailed):
            status = 503
        elif isinstance(exc, InvalidResponse) or exc.status is None:
            status = 502
        else:
            status = exc.status
        return InferenceError(f"Predictor {self.host}: {exc}", status=status)

    # -- readiness -----------------------------------------------------------------------------
    def healthy(self) -> bool:
        """The predictor's readiness as last seen (True when ``predictor_health_check`` is off).

        The first call starts a watcher on the running loop that asks the predictor every
        ``health_interval`` seconds; until its first answer, the predictor counts as not ready.
        """
        if not self.config.predictor_health_check:
            return True
        if self._watch is None or self._watch.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return bool(self._ready)
            self._watch = loop.create_task(self._watch_readiness(), name=f"predictor-health-{self.model_name}")
        return bool(self._ready)

    async def _watch_readiness(self) -> None:
        while True:
            self._ready = await self.is_ready()
            await asyncio.sleep(self.health_interval)

    async def is_ready(self) -> bool:
        """Ask the predictor now whether its model is ready; any failure counts as no."""
        client = self._get_client()
        timeout = min(5.0, self.config.predictor_request_timeout_seconds)
        try:
            if isinstance(client, AsyncGRPCClient):
                return await client.is_model_ready(self.model_name, timeout=timeout)
            return await client.is_model_ready(self.host, self.model_name, timeout=timeout)
        except ClientError as exc:
            logger.debug("Predictor %s is not ready for %s: %s", self.host, self.model_name, exc)
            return False

    # -- lifecycle -----------------------------------------------------------------------------
    async def close(self) -> None:
        """Stop watching and close the client; a later call opens a new one (e.g. after a reload)."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        self._ready = None
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


__all__ = ["FORWARDED_HEADERS", "Predictor", "attach_predictor", "config_from_settings"]
