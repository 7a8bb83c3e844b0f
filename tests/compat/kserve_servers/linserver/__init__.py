# A KServe 0.16 model server package written the way KServe's own sklearnserver, xgbserver and
# lgbserver are (a model class, a repository subclass, a __main__ with the shared flag parser), for a
# linear model kept in a JSON file so that it runs with numpy alone. Tests run it as
# `python -m linserver --model_dir DIR --model_name NAME` on KServe and, imports renamed, on modelport.
from .model import LinearModel  # noqa: F401
from .linear_model_repository import LinearModelRepository  # noqa: F401
