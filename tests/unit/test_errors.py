"""modelport.errors: one hierarchy, one protocol-neutral code per class, and the REST status table."""

from __future__ import annotations

import logging

import pytest

from modelport import errors
from modelport.errors import (
    DeadlineExceeded,
    ErrorCode,
    InferenceError,
    InvalidInput,
    ModelMissingError,
    ModelNotFound,
    ModelNotReady,
    ModelportError,
    NoModelReady,
    Overloaded,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ServerNotLive,
    ServerNotReady,
    StartupError,
    StorageError,
    Unauthenticated,
    Unimplemented,
    UnsupportedProtocol,
    WorkersShouldBeLessThanMaxWorkersError,
)
from modelport.settings import SettingsError
from modelport.transports.rest.errors import HTTP_STATUS, MethodNotAllowed, RouteNotFound, error_response

EXPECTED_CODES = {
    ModelportError: ErrorCode.INTERNAL,
    InvalidInput: ErrorCode.INVALID_INPUT,
    InferenceError: ErrorCode.INTERNAL,
    ModelNotFound: ErrorCode.NOT_FOUND,
    ModelNotReady: ErrorCode.NOT_READY,
    UnsupportedProtocol: ErrorCode.INVALID_INPUT,
    Unimplemented: ErrorCode.UNIMPLEMENTED,
    ServerNotReady: ErrorCode.NOT_READY,
    ServerNotLive: ErrorCode.UNAVAILABLE,
    PayloadTooLarge: ErrorCode.PAYLOAD_TOO_LARGE,
    Overloaded: ErrorCode.RESOURCE_EXHAUSTED,
    DeadlineExceeded: ErrorCode.DEADLINE_EXCEEDED,
    StorageError: ErrorCode.UNAVAILABLE,
    StartupError: ErrorCode.INTERNAL,
    SettingsError: ErrorCode.INVALID_INPUT,
    Unauthenticated: ErrorCode.UNAUTHENTICATED,
    PermissionDenied: ErrorCode.PERMISSION_DENIED,
    # KServe's names (kserve.errors)
    ModelMissingError: ErrorCode.NOT_FOUND,
    NoModelReady: ErrorCode.NOT_READY,
    WorkersShouldBeLessThanMaxWorkersError: ErrorCode.INVALID_INPUT,
    RateLimited: ErrorCode.RESOURCE_EXHAUSTED,
}

EXPECTED_HTTP = {
    ErrorCode.INVALID_INPUT: 400,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.NOT_READY: 503,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.UNIMPLEMENTED: 501,
    ErrorCode.INTERNAL: 500,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
    ErrorCode.DEADLINE_EXCEEDED: 504,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.ALREADY_EXISTS: 400,  # a shared-memory region registered twice (Triton answers 400)
}


def test_every_exported_error_is_covered_here():
    exported = {getattr(errors, name) for name in errors.__all__} - {ErrorCode}
    assert exported == set(EXPECTED_CODES) - {SettingsError}
    for cls in exported:
        assert issubclass(cls, ModelportError) and issubclass(cls, Exception)


@pytest.mark.parametrize("cls, code", list(EXPECTED_CODES.items()), ids=[c.__name__ for c in EXPECTED_CODES])
def test_error_class_code(cls, code):
    assert cls.code is code


def test_plain_errors_carry_their_reason():
    for cls in (
        ModelportError,
        InvalidInput,
        Unimplemented,
        PayloadTooLarge,
        Overloaded,
        DeadlineExceeded,
        StorageError,
    ):
        exc = cls("what went wrong")
        assert exc.reason == "what went wrong" and str(exc) == "what went wrong"
        assert exc.args == ("what went wrong",)
        assert cls().reason == "" and str(cls()) == ""


def test_inference_error():
    exc = InferenceError("model crashed")
    assert (str(exc), exc.status, exc.debug_details) == ("model crashed", None, None)
    exc = InferenceError("busy", status=503, debug_details="trace")
    assert (exc.reason, exc.status, exc.debug_details) == ("busy", 503, "trace")


def test_model_not_found_and_not_ready_messages():
    exc = ModelNotFound("iris")
    assert (str(exc), exc.model_name, exc.version) == ("Model iris not found", "iris", None)
    assert str(ModelNotFound("iris", "2")) == "Model iris version 2 not found"
    assert str(ModelNotReady("iris")) == "Model iris is not ready"
    exc = ModelNotReady("iris", "still loading")
    assert (str(exc), exc.model_name, exc.detail) == ("Model iris is not ready: still loading", "iris", "still loading")


def test_protocol_and_server_state_messages():
    exc = UnsupportedProtocol("v9")
    assert str(exc) == "Unsupported protocol v9" and exc.protocol_version == "v9"
    assert str(ServerNotReady()) == "Server is not ready"
    assert str(ServerNotReady("warming up")) == "warming up"
    assert str(ServerNotLive()) == "Server is not live"
    assert str(ServerNotLive("shutting down")) == "shutting down"


def test_errors_can_be_caught_by_their_base():
    with pytest.raises(ModelportError) as info:
        raise ModelNotFound("m")
    assert info.value.code is ErrorCode.NOT_FOUND


# -- the REST table ------------------------------------------------------------------------------


def test_rest_table_covers_every_error_code():
    assert set(HTTP_STATUS) == set(ErrorCode)
    assert HTTP_STATUS == EXPECTED_HTTP
    for status in HTTP_STATUS.values():
        assert 400 <= status <= 599


@pytest.mark.parametrize(
    "cls", [c for c in EXPECTED_CODES if c not in (ModelNotFound, ModelNotReady, UnsupportedProtocol, NoModelReady,
                                                  WorkersShouldBeLessThanMaxWorkersError)]
)
def test_rest_error_response_uses_the_table(cls, caplog):
    exc = cls("reason text")
    with caplog.at_level(logging.CRITICAL, logger="modelport"):
        status, body, _ = error_response(exc, {"method": "POST", "path": "/x"})
    assert status == HTTP_STATUS[cls.code]
    assert body == b'{"error":"reason text"}'


def test_rest_error_response_special_cases(caplog):
    scope = {"method": "POST", "path": "/v2/models/m/infer"}
    status, _, headers = error_response(PayloadTooLarge("too big"), scope)
    assert status == 413 and (b"connection", b"close") in headers
    status, _, headers = error_response(MethodNotAllowed("PUT", "POST"), scope)
    assert status == 405 and (b"allow", b"POST") in headers
    assert error_response(RouteNotFound("/nope"), scope)[0] == 404
    with caplog.at_level(logging.CRITICAL, logger="modelport"):
        assert error_response(InferenceError("busy", status=503), scope)[0] == 503
        status, body, _ = error_response(RuntimeError("unexpected"), scope)
    assert status == 500 and body.startswith(b'{"error":"Model m failed while serving the request; see the server log (request id ')
    assert b"RuntimeError" not in body and b"unexpected" not in body
