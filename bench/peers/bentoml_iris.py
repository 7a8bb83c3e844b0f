"""BentoML peer: the iris joblib as a ``@bentoml.service`` with two ``@bentoml.api`` routes (V2, V1).

Run inside bench/.venvs/bentoml, from bench/peers:

    bentoml serve bentoml_iris:Iris --host 127.0.0.1 --port P

BentoML parses the JSON body's top-level fields into the API's arguments (``inputs``, ``id`` for
V2, ``instances`` for V1) and serializes the returned dict. Settings come from the environment so
one file serves every config:

- default (nothing set): ``@bentoml.service()`` as BentoML's quickstart writes it: 1 worker,
  ``threads`` 1 (sync APIs run in a one-thread pool), no concurrency limit, the access log on.
- ``BENCH_BENTOML_QUIET=1``: the per-request access log off (``logging.access.enabled: false``).
- ``BENCH_BENTOML_WORKERS=cpu_count``: ``workers="cpu_count"``, one process per core, which
  BentoML's docs recommend for CPU-bound models.
"""

import os

import bentoml

import iris_codec

SETTINGS: dict = {}
if os.environ.get("BENCH_BENTOML_QUIET") == "1":
    SETTINGS["logging"] = {"access": {"enabled": False}}
if os.environ.get("BENCH_BENTOML_WORKERS"):
    workers = os.environ["BENCH_BENTOML_WORKERS"]
    SETTINGS["workers"] = workers if workers == "cpu_count" else int(workers)


@bentoml.service(**SETTINGS)
class Iris:
    def __init__(self) -> None:
        self.clf = iris_codec.load_model()

    @bentoml.api(route="/v2/models/iris/infer")
    def infer(self, inputs: list[dict], id: str | None = None) -> dict:
        return iris_codec.v2_output(self.clf.predict(iris_codec.v2_input({"inputs": inputs})), id)

    @bentoml.api(route="/v1/models/iris:predict")
    def predict(self, instances: list[list[float]]) -> dict:
        return iris_codec.v1_output(self.clf.predict(iris_codec.v1_input({"instances": instances})))
