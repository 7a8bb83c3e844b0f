"""``modelport traffic|promote|rollback``: change a running server's traffic policy over its REST API."""

from __future__ import annotations

import argparse
import json
import sys

COMMANDS = ("traffic", "promote", "rollback")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    def url(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", default="http://127.0.0.1:8080", help="the server's REST address (default http://127.0.0.1:8080)")

    p = sub.add_parser("traffic", help="show or set a model's traffic split on a running server")
    p.add_argument("model")
    p.add_argument("weights", nargs="*", metavar="VERSION=WEIGHT", help="e.g. 2=90 3=10; none: show the policy")
    p.add_argument("--sticky", metavar="HEADER", help="keep a user on one version by this header (e.g. x-user-id)")
    p.add_argument("--shadow", metavar="VERSION[:PERCENT]", help="mirror PERCENT (default 100) of requests to VERSION")
    url(p)
    p = sub.add_parser("promote", help="send all of a model's traffic to one loaded version (blue-green)")
    p.add_argument("model")
    p.add_argument("version")
    url(p)
    p = sub.add_parser("rollback", help="restore a model's previous traffic policy")
    p.add_argument("model")
    url(p)


def run(args: argparse.Namespace) -> int:
    import httpx

    body: dict | None = None
    if args.command == "traffic" and args.weights:
        weights = {}
        for item in args.weights:
            version, sep, weight = item.partition("=")
            try:
                weights[version] = float(weight)
            except ValueError:
                print(f"modelport traffic: {item!r} is not VERSION=WEIGHT", file=sys.stderr)
                return 2
            if not sep or not version:
                print(f"modelport traffic: {item!r} is not VERSION=WEIGHT", file=sys.stderr)
                return 2
        body = {"traffic": weights}
        if args.sticky:
            body["sticky"] = args.sticky
        if args.shadow:
            version, _, percent = args.shadow.partition(":")
            body["shadow"] = {"version": version, "percent": float(percent or 100)}
    elif args.command == "promote":
        body = {"version": args.version}
    url = f"{args.url.rstrip('/')}/v2/repository/models/{args.model}/{args.command}"
    try:
        response = httpx.post(url, json=body, timeout=60) if body is not None else httpx.post(url, timeout=60)
    except httpx.HTTPError as exc:
        print(f"modelport {args.command}: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        try:
            message = response.json().get("error", response.text)
        except ValueError:
            message = response.text
        print(f"modelport {args.command}: {response.status_code}: {message}", file=sys.stderr)
        return 1
    print(json.dumps(response.json(), indent=2))
    return 0
