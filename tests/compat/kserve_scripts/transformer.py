# A KServe transformer as LiftWing writes it: it sets self.predictor_host / self.protocol in __init__
# and overrides only preprocess/postprocess. --upstream is this script's own flag (KServe's parser
# ignores it via parse_known_args).
import argparse

import kserve
from kserve import model_server


class Transformer(kserve.Model):
    def __init__(self, name, predictor_host, protocol):
        super().__init__(name)
        self.predictor_host = predictor_host
        self.protocol = protocol
        self.ready = True

    def preprocess(self, inputs, headers=None):
        return {**inputs, "transformed": True}

    def postprocess(self, outputs, headers=None):
        return {"transformed": True, "predictor_said": outputs}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--upstream", default=None)
    args, _ = parser.parse_known_args()
    model = Transformer(args.model_name, predictor_host=args.upstream or args.predictor_host, protocol=args.protocol)
    kserve.ModelServer().start([model])
