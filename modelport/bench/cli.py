"""The ``modelport bench`` command line: flags in, tables and files out.

rich (the live line, the table) and matplotlib (``--plot``) come with the ``bench`` extra; without
rich the same facts print as plain lines and a plain table. The first line is printed before any of
the load code is imported, so the user sees at once what is being measured.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="load-test a model: throughput and latency per concurrency or request rate",
                       description="Load-test a model on a running server (--url/--grpc) or on one it starts (--serve).")
    p.add_argument("model", help="model name")
    where = p.add_argument_group("server")
    where.add_argument("--url", default="http://127.0.0.1:8080", help="REST server (default http://127.0.0.1:8080)")
    where.add_argument("--grpc", metavar="HOST:PORT", help="gRPC server, for --protocol grpc")
    where.add_argument("--serve", metavar="FOLDER", help="start `modelport serve FOLDER` on free ports and bench it")
    p.add_argument("--protocol", choices=["rest-v2", "rest-v2-binary", "rest-v1", "grpc"], default="rest-v2",
                   help="how requests are sent (default rest-v2: JSON)")
    p.add_argument("--model-version", help="a version of the model")
    p.add_argument("--input-file", help="request body as JSON (V2 \"inputs\" or V1 \"instances\"); default: random data "
                                        "of the shapes the model declares")
    p.add_argument("--batch", type=int, default=1, help="rows per request for inputs with a variable first dimension (default 1)")
    load = p.add_mutually_exclusive_group()
    load.add_argument("--concurrency", default="1", help="closed loop: requests in flight, e.g. 8, 1,4,16 or 1:64:x2 (default 1)")
    load.add_argument("--request-rate", help="open loop: requests per second, e.g. 200 or 100:1600:x2")
    p.add_argument("--duration", type=float, default=5.0, help="seconds measured per step (default 5)")
    p.add_argument("--requests", type=int, default=0, help="measure this many requests per step instead of a duration")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of unmeasured load before each step (default 1)")
    p.add_argument("--processes", type=int, default=1, help="client processes sharing the load (default 1)")
    p.add_argument("--no-server-stats", action="store_true", help="do not read the server's /metrics")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--csv", metavar="FILE", help="write the results as CSV")
    p.add_argument("--plot", metavar="FILE.png", help="plot throughput and latency against the levels (needs matplotlib)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown too")
    p.add_argument("--quiet", action="store_true", help="no live progress")


def main(args: argparse.Namespace) -> int:
    # The first line, before the load code (numpy, httpx, rich) is imported: what is being measured.
    where = f"a server started from {args.serve}" if args.serve else (args.grpc if args.protocol == "grpc" else args.url)
    window = f"{args.requests} requests" if args.requests else f"{args.duration:g} s"
    levels_text = f"request rate {args.request_rate}" if args.request_rate else f"concurrency {args.concurrency}"
    print(f"modelport bench: {args.model} on {where} over {args.protocol}; {levels_text}; "
          f"{args.warmup:g} s warm-up + {window} per step", flush=True)

    from . import BenchConfig, parse_levels, run_bench, start_server

    try:
        rates = parse_levels(args.request_rate, float) if args.request_rate else None
        levels = parse_levels(args.concurrency, int)
    except ValueError as exc:
        print(f"modelport bench: {exc}", file=sys.stderr)
        return 2
    from .report import console_for, markdown, plot, table, to_json, write_csv

    console = console_for(sys.stdout)
    server = None
    url, grpc = args.url, args.grpc
    if args.serve:
        server = start_server(args.serve)
        url, grpc = server.url, server.grpc
        console.print(f"Started modelport serve {args.serve} at {url}" + (f" (gRPC {grpc})" if grpc else ""))
    config = BenchConfig(model=args.model, url=url, grpc=grpc, protocol=args.protocol, version=args.model_version,
                         input_file=args.input_file, batch=args.batch, concurrency=levels, rates=rates,
                         duration=args.duration, requests=args.requests, warmup=args.warmup, processes=args.processes,
                         metrics=not args.no_server_stats)
    try:
        steps = run_bench(config, console, live=not args.quiet)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"modelport bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()
    title = f"{args.model} over {args.protocol}"
    console.print(table(steps, title))
    if args.markdown:
        print(markdown(steps), flush=True)
    doc = asdict(config)
    if args.json:
        with open(args.json, "w") as f:
            f.write(to_json(steps, doc))
    if args.csv:
        write_csv(steps, args.csv)
    if args.plot:
        try:
            plot(steps, args.plot, title)
        except ImportError as exc:
            print(f"modelport bench: {exc}", file=sys.stderr)
            return 1
    return 1 if steps and all(s.requests == 0 for s in steps) else 0


__all__ = ["add_parser", "main"]

