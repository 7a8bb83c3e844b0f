"""MLflow's scoring protocol on the REST app: ``POST /invocations``, ``GET /ping``, ``/health``, ``/version``.

The routes answer as ``mlflow models serve`` does (mlflow.pyfunc.scoring_server), so a client or a
platform written for an MLflow container (SageMaker-style ``/invocations`` + ``/ping``) works unchanged:

* ``POST /invocations``: JSON (``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``,
  with ``params``) or CSV (``text/csv``), parsed and answered by MLflow's own code, through the data
  plane like any inference (admission, deadline, metrics under protocol "mlflow"). Errors have MLflow's
  body (``error_code``, ``message``) plus modelport's ``error``, never a stack trace; a 415 for an
  unsupported content type is ``{"error": ...}``.
* With one MLflow model served (any model with an ``invocations(body, content_type)`` method),
  ``/invocations`` scores it. With several, the client names one in the ``x-modelport-model`` header;
  without it the answer is a 400 listing them. (The V2 and V1 routes name the model in the path.)
* ``GET /ping`` and ``/health``: 200 with the body ``"\\n"`` when the server is ready (as MLflow's),
  503 ``{"error": ...}`` while it is not. ``GET /version``: the installed MLflow's version, as MLflow.
"""

from __future__ import annotations

from typing import Any, Callable

from ...controls.auth import authorize_model
from ...doors import MLFLOW, Door
from ...errors import ErrorCode, InvalidInput, ModelNotFound, ModelportError, Unimplemented
from ...observability.edge import decoded_headers
from .errors import RouteNotFound

MODEL_HEADER = "x-modelport-model"
PROTOCOL = "mlflow"  # the protocol label of /invocations in metrics and statistics

_JSON = b"application/json"


class MLflowScoring:
    """MLflow's routes (``doors.MLFLOW``) on a server's REST app (see :func:`mount_mlflow_scoring`)."""

    def __init__(self, server: Any):
        self.server = server

    async def __call__(self, door: Door, params: dict, scope: dict, receive: Callable) -> tuple:
        custom = getattr(self.server, "custom_routes", None)
        if custom is not None and (door.method, door.path) in custom.routes:  # an MLServer runtime's own
            return await custom.dispatch(door, params, scope, receive)  # endpoint here (mlserver-mlflow)
        if door.name == "mlflow.invocations":
            return await self._invocations(decoded_headers(scope), receive)
        if door.name in ("mlflow.ping", "mlflow.health"):
            dataplane = self.server.dataplane
            if dataplane.ready():
                return 200, b"\n", _JSON, []
            reason = dataplane.not_ready_because() or "models are not ready"
            return 503, _dumps({"error": f"Server not ready: {reason}"}), _JSON, []
        try:  # mlflow.version
            from mlflow.version import VERSION
        except ImportError:
            raise Unimplemented("/version reports MLflow's version: pip install 'modelport[mlflow]'") from None
        return 200, VERSION.encode(), _JSON, []  # MLflow's body: the bare version text

    async def _invocations(self, headers: dict[str, str], receive: Callable) -> tuple:
        app = self.server.rest_app
        body = await app._read_body(headers, receive)
        name = self._model_for(headers)
        authorize_model(name)  # the edge checked the key's infer scope; it must also cover this model
        content_type = headers.get("content-type") or "application/json"
        status, answer, answer_type = await self.server.dataplane.call(
            name, "invocations", body, content_type, headers=headers, protocol=PROTOCOL
        )
        return status, answer, answer_type.encode(), []

    def _model_for(self, headers: dict[str, str]) -> str:
        """The model /invocations scores: the one named in the header, else the only MLflow model."""
        names = sorted({e.name for e in self.server.repository.entries() if _scores(e.model)})
        asked = headers.get(MODEL_HEADER)
        if asked:
            if asked in names:
                return asked
            if self.server.repository.get_model(asked) is None:
                raise ModelNotFound(asked)
            raise InvalidInput(f"Model {asked} is not an MLflow model: score it with /v2/models/{asked}/infer")
        if len(names) == 1:
            return names[0]
        if not names:
            raise _NoMLflowModel("/invocations scores MLflow models (a folder holding an MLmodel file); this server serves none")
        raise InvalidInput(
            f"Several MLflow models are served ({', '.join(names)}): name one in the {MODEL_HEADER} header, "
            "or use /v2/models/{name}/infer"
        )


class _NoMLflowModel(ModelportError):
    code = ErrorCode.NOT_FOUND


def _scores(model: Any) -> bool:
    return model is not None and callable(getattr(model, "invocations", None))


def _dumps(doc: Any) -> bytes:
    from ...wire.v2_json import dumps

    return dumps(doc)


def mount_mlflow_scoring(server: Any) -> MLflowScoring:
    """Mount MLflow's scoring routes on the server's REST app, each with its declared door (doors.MLFLOW)."""
    scoring = MLflowScoring(server)
    for door in MLFLOW:
        server.rest_app.mount(door.path, scoring, [door])
    return scoring


__all__ = ["MODEL_HEADER", "MLflowScoring", "mount_mlflow_scoring"]
