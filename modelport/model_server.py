"""``kserve.model_server`` under modelport: ``from modelport import model_server``.

``parser`` has KServe's flags (``argparse.ArgumentParser(parents=[model_server.parser])``);
``ModelServer().start()`` reads them from ``sys.argv``. ``args`` is parsed on first access, not at
import as KServe does. KServe's FastAPI ``app`` has no counterpart (modelport's REST app is plain ASGI).
"""

from .compat.kserve.flags import build_parser, parser
from .model import PredictorConfig
from .repository.entries import ModelRepository
from .serving.server import ModelServer


def __getattr__(name: str):
    if name == "args":  # KServe parses argv at import; here only when a script asks for it
        return parser.parse_known_args()[0]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ModelRepository", "ModelServer", "PredictorConfig", "build_parser", "parser"]
