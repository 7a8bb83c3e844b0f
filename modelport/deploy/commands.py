"""The ``modelport build`` and ``modelport k8s`` commands (their arguments, and what they print)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path


def add_parsers(sub: argparse._SubParsersAction) -> None:
    build = sub.add_parser("build", help="write a Dockerfile and build context for a model folder, and build the image")
    build.add_argument("folder", help="model folder (model-settings.json files), one model file, or a transformer pair")
    build.add_argument("-t", "--tag", help="image name, e.g. iris:1 (needed unless --dockerfile-only)")
    build.add_argument("--dockerfile-only", action="store_true", help="write the build context and stop")
    build.add_argument("-o", "--output", help="where to write the build context (default: a temporary folder)")
    build.add_argument("--engine", choices=["docker", "podman", "buildah"], help="container engine (default: the first that works)")
    build.add_argument("--base", help="base image (default python:3.11-slim-bookworm)")

    k8s = sub.add_parser("k8s", help="print Kubernetes resources (KServe, ModelMesh, plain) for a model folder")
    k8s.add_argument("folder", help="model folder, one model file, or a transformer pair")
    k8s.add_argument("--image", required=True, help="the image to run (from `modelport build`)")
    k8s.add_argument("--target", choices=["kserve", "runtime", "modelmesh", "plain", "all"], default="kserve",
                     help="kserve: InferenceService; runtime: (Cluster)ServingRuntime; modelmesh: ModelMesh ServingRuntime; "
                          "plain: Deployment + Service + HPA (default kserve)")
    k8s.add_argument("--kserve-mode", choices=["serverless", "raw"], default="serverless",
                     help="kserve target: serverless (default; applies in either KServe mode, no drain settings) or raw "
                          "(the RawDeployment annotation, with the preStop pause and terminationGracePeriodSeconds)")
    k8s.add_argument("--name", help="resource name (default: from the folder's name)")
    k8s.add_argument("--namespace", help="namespace to set on the resources")
    k8s.add_argument("--replicas", type=int, default=1, help="Deployment replicas (plain)")
    k8s.add_argument("--min-replicas", type=int, default=1)
    k8s.add_argument("--max-replicas", type=int, default=4)
    k8s.add_argument("--target-cpu", type=int, default=70, help="HPA CPU utilization target in percent (plain)")
    k8s.add_argument("--cpu", default="1", help="CPU request (default 1)")
    k8s.add_argument("--memory", default="1Gi", help="memory request and limit (default 1Gi)")
    k8s.add_argument("--gpus", type=int, default=0, help="nvidia.com/gpu limit")
    k8s.add_argument("-o", "--output", help="write the YAML here instead of stdout")


def build(args: argparse.Namespace) -> int:
    from ..errors import ModelportError
    from .image import DEFAULT_BASE, build_command, find_engine, write_context
    from .plan import plan_folder

    if not args.dockerfile_only and not args.tag:
        print("modelport build: give an image name with -t NAME (or use --dockerfile-only)", file=sys.stderr)
        return 2
    try:
        plan = plan_folder(args.folder, name=(args.tag or "").split(":")[0].rsplit("/", 1)[-1] or None)
        out = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="modelport-build-"))
        context = write_context(plan, out, args.base or DEFAULT_BASE)
    except ModelportError as exc:
        print(f"modelport build: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {context / 'Dockerfile'} and its build context (models: {', '.join(plan.models)}; "
          f"extras: {', '.join(plan.runtimes) or 'none'})", file=sys.stderr)
    if args.dockerfile_only:
        print(context)
        return 0
    engine = find_engine(args.engine)
    if engine is None:
        tried = args.engine or "docker, podman, buildah"
        print(f"modelport build: no working container engine ({tried}); the context is in {context}: "
              f"build it with `docker build -t {args.tag} {context}`", file=sys.stderr)
        return 1
    command = build_command(engine, context, args.tag, args.base)
    print("Running: " + " ".join(command), file=sys.stderr)
    code = subprocess.run(command).returncode
    if code == 0:
        print(f"Built {args.tag}. Run it: docker run --rm -p 8080:8080 -p 8081:8081 {args.tag}", file=sys.stderr)
    return code


def k8s(args: argparse.Namespace) -> int:
    from ..errors import ModelportError
    from .k8s import TARGETS, K8sOptions, resources, to_yaml
    from .plan import plan_folder

    try:
        plan = plan_folder(args.folder, name=args.name)
        options = K8sOptions(
            image=args.image, namespace=args.namespace, replicas=args.replicas, min_replicas=args.min_replicas,
            max_replicas=args.max_replicas, target_cpu_utilization=args.target_cpu, cpu=args.cpu, memory=args.memory,
            gpus=args.gpus, kserve_mode=args.kserve_mode,
        )
        targets = TARGETS if args.target == "all" else (args.target,)
        docs = [doc for target in targets for doc in resources(plan, options, target)]
        text = to_yaml(docs)
    except ModelportError as exc:
        print(f"modelport k8s: {exc}", file=sys.stderr)
        return 2
    if args.output:
        Path(args.output).write_text(text)
        print(f"Wrote {len(docs)} resources to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
