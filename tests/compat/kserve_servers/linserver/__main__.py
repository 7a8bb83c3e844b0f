import argparse

import kserve
from kserve import logging
from kserve.errors import ModelMissingError
from kserve.logging import logger

from linserver import LinearModel, LinearModelRepository

parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
parser.add_argument("--model_dir", required=True, help="A local path to the model file")
args, _ = parser.parse_known_args()

if __name__ == "__main__":
    if args.configure_logging:
        logging.configure_logging(args.log_config_file)
    model = LinearModel(args.model_name, args.model_dir)
    try:
        model.load()
        kserve.ModelServer().start([model])
    except ModelMissingError:
        logger.error(f"no model file under {args.model_dir}; serving its sub-folders as models")
        kserve.ModelServer(registered_models=LinearModelRepository(args.model_dir)).start([])
