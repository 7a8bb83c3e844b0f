"""Deploying a model folder beyond one process: container images and Kubernetes resources.

Everything here consumes settings and a model folder and writes files (or runs an image builder);
nothing here reaches into a running server. See :mod:`.plan` (what a folder needs), :mod:`.image`
(Dockerfile, build context, building) and :mod:`.k8s` (KServe, ModelMesh and plain Kubernetes resources).
"""

from .plan import DeployPlan, plan_folder

__all__ = ["DeployPlan", "plan_folder"]
