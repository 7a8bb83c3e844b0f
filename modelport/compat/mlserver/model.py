"""MLServer's ``MLModel`` base class: what an MLServer custom runtime subclasses.

The runtime's code is MLServer's; modelport serves it through one adapter
(:mod:`modelport.compat.mlserver.adapter`) that turns it into a :class:`modelport.Model` for the data plane.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Dict, List, Optional

from .codecs import (
    CodecNotFound,
    decode_inference_request,
    decode_request_input,
    encode_inference_response,
    encode_response_output,
    get_decoded,
    has_decoded,
)
from .settings import ModelSettings
from .types import InferenceRequest, InferenceResponse, MetadataModelResponse, MetadataTensor, Parameters, RequestInput, RequestOutput, ResponseOutput


def _index(tensors: Optional[List[MetadataTensor]]) -> Dict[str, MetadataTensor]:
    return {t.name: t for t in tensors or []}


class MLModel:
    """Override ``load`` and ``predict`` (both ``async``); ``unload`` and ``predict_stream`` optionally."""

    def __init__(self, settings: ModelSettings):
        self._settings = settings
        self._inputs_index = _index(settings.inputs)
        self._outputs_index = _index(settings.outputs)
        self.ready = False

    async def load(self) -> bool:
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        raise NotImplementedError("predict() method not implemented")

    async def predict_stream(self, payloads: AsyncIterator[InferenceRequest]) -> AsyncIterator[InferenceResponse]:
        yield await self.predict(await payloads.__anext__())

    async def unload(self) -> bool:
        return True

    @property
    def name(self) -> str:
        return self._settings.name

    @property
    def version(self) -> Optional[str]:
        return self._settings.version

    @property
    def settings(self) -> ModelSettings:
        return self._settings

    @property
    def inputs(self) -> Optional[List[MetadataTensor]]:
        return self._settings.inputs

    @inputs.setter
    def inputs(self, value: List[MetadataTensor]) -> None:
        self._settings.inputs = value
        self._inputs_index = _index(value)

    @property
    def outputs(self) -> Optional[List[MetadataTensor]]:
        return self._settings.outputs

    @outputs.setter
    def outputs(self, value: List[MetadataTensor]) -> None:
        self._settings.outputs = value
        self._outputs_index = _index(value)

    # -- codec helpers -------------------------------------------------------------------------
    def decode(self, request_input: RequestInput, default_codec: Any = None) -> Any:
        """One input as a Python value: by its content type (or the model's metadata), else ``default_codec``."""
        decode_request_input(request_input, self._inputs_index)
        if has_decoded(request_input):
            return get_decoded(request_input)
        if default_codec:
            return default_codec.decode_input(request_input)
        return request_input.data

    def decode_request(self, inference_request: InferenceRequest, default_codec: Any = None) -> Any:
        decode_inference_request(inference_request, self._settings, self._inputs_index)
        if has_decoded(inference_request):
            return get_decoded(inference_request)
        if default_codec:
            return default_codec.decode_request(inference_request)
        return inference_request

    def encode_response(self, payload: Any, default_codec: Any = None) -> InferenceResponse:
        response = encode_inference_response(payload, self._settings)
        if response:
            return response
        if default_codec:
            return default_codec.encode_response(self.name, payload, self.version)
        raise CodecNotFound(payload_type=str(type(payload)), is_input=False, is_request=True)

    def encode(self, payload: Any, request_output: RequestOutput, default_codec: Any = None) -> ResponseOutput:
        output = encode_response_output(payload, request_output, self._outputs_index)
        if output:
            return output
        if default_codec:
            return default_codec.encode_output(request_output.name, payload)
        raise CodecNotFound(name=request_output.name, is_input=False, is_request=False)

    async def metadata(self) -> MetadataModelResponse:
        meta = MetadataModelResponse(
            name=self.name, platform=self._settings.platform, versions=self._settings.versions,
            inputs=self._settings.inputs, outputs=self._settings.outputs,
        )
        if self._settings.parameters:
            meta.parameters = Parameters(content_type=self._settings.parameters.content_type)
        return meta
