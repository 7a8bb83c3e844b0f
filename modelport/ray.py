"""modelport on Ray Serve (extra ``ray``): ``build_app`` for ``serve.run``, and ``run`` as
``modelport serve --ray`` uses it. See :mod:`modelport.deploy.ray_serve`."""

from ._optional import import_optional

import_optional("ray.serve", "ray")  # a clear "pip install 'modelport[ray]'" when Ray is missing

from .deploy.ray_serve import APP_NAME, DEPLOYMENT_NAME, REPLICA_HEADER, UNDER_RAY, build_app, check_settings, run  # noqa: E402

__all__ = ["APP_NAME", "DEPLOYMENT_NAME", "REPLICA_HEADER", "UNDER_RAY", "build_app", "check_settings", "run"]
