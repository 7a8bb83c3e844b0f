# A KServe 0.16 predictor as teams write it (Wikimedia LiftWing's revscoring pattern, a strict model
# and an echo model). The modelport tests run it with "kserve" replaced by "modelport" in the imports.
import argparse

import kserve
from kserve import model_server
from kserve.errors import InvalidInput


class RevscoringModel(kserve.Model):
    def __init__(self, name):
        super().__init__(name)
        self.load()

    def load(self):
        self.ready = True

    async def preprocess(self, inputs, headers=None):
        rev_id = inputs["rev_id"]  # the client sends {"rev_id": ...}; features are fetched here
        return {"instances": [[rev_id % 7, 1]], "rev_id": rev_id}

    def predict(self, request, headers=None):
        return {"predictions": [sum(request["instances"][0])], "predictor_received": request}


class StrictModel(kserve.Model):
    def __init__(self, name):
        super().__init__(name)
        self.ready = True

    def predict(self, request, headers=None):
        if "instances" not in request:
            raise InvalidInput("Missing 'instances' field")
        return {"predictions": [len(request["instances"])]}


class SplitModel(kserve.Model):
    # preprocess turns {"instances": "a,b"} into a list; KServe checks "instances" after preprocess.
    def __init__(self, name):
        super().__init__(name)
        self.ready = True

    def preprocess(self, inputs, headers=None):
        if isinstance(inputs.get("instances"), str):
            return {"instances": inputs["instances"].split(",")}
        return inputs

    def predict(self, request, headers=None):
        return {"predictions": request["instances"]}


class EchoModel(kserve.Model):
    def __init__(self, name):
        super().__init__(name)
        self.ready = True

    def predict(self, request, headers=None):
        return {"received": request}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    args, _ = parser.parse_known_args()
    models = [RevscoringModel(args.model_name), StrictModel("strict"), SplitModel("split"), EchoModel("echo")]
    kserve.ModelServer(workers=1).start(models)
