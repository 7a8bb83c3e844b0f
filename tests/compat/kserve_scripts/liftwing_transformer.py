# A KServe 0.16 service written the way Wikimedia's LiftWing services are: flags from
# `parents=[kserve.model_server.parser]`, fastapi.HTTPException for bad input, and V2 requests whose
# one BYTES input holds a JSON document (bytes over gRPC, text over REST). The tests run it on KServe
# and, with "kserve" replaced by "modelport" in the imports, on modelport.
import argparse
import json

import numpy as np
from fastapi import HTTPException

import kserve
from kserve import InferOutput, InferRequest, InferResponse
from kserve.errors import InvalidInput


class OutlinkTopicModel(kserve.Model):
    def __init__(self, name):
        super().__init__(name)
        self.ready = True

    async def preprocess(self, inputs, headers=None):
        v2 = isinstance(inputs, InferRequest)
        if v2:
            data = inputs.inputs[0].data[0]
            if inputs.from_grpc:
                if not isinstance(data, bytes):
                    raise InvalidInput("Expected bytes for gRPC request")
                data = data.decode("utf-8")
            inputs = json.loads(data)
        page_id = inputs.get("page_id")
        if page_id is None:
            raise HTTPException(status_code=400, detail="The parameter page_id is required.")
        if not isinstance(page_id, int):
            raise HTTPException(status_code=422, detail={"page_id": "should be an integer"})
        if page_id == 404:
            raise HTTPException(status_code=404, detail=f"Page {page_id} does not exist.")
        return {"page_id": page_id, "lang": inputs.get("lang", "en"), "v2": v2,
                "id": getattr(headers, "get", lambda *_: None)("x-request-id")}

    def predict(self, request, headers=None):
        lang, page_id = request["lang"], request["page_id"]
        result = {"prediction": {"article": f"https://{lang}.wikipedia.org/wiki?curid={page_id}",
                                 "results": [{"topic": "Culture.Media", "score": round(page_id % 97 / 97, 4)}]}}
        if not request["v2"]:
            return result
        out = InferOutput(name="result", shape=[1], datatype="BYTES")
        out.set_data_from_numpy(np.array([json.dumps(result)], dtype=object), binary_data=False)
        return InferResponse(response_id="r-1", model_name=self.name, infer_outputs=[out])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    args, _ = parser.parse_known_args()
    kserve.ModelServer().start([OutlinkTopicModel(args.model_name)])
