"""CPU cost of reading a models folder of many models: the repository index and a load by name.

    python bench/scan_cost.py --models 2000          # the modelport on PYTHONPATH (a checkout to compare)

Builds ``--models`` model folders (model-settings.json naming a trivial Model) in a temp folder, their
mtimes set a minute back, then measures in this process with ``time.process_time()`` (CPU seconds of
this process, which a shared machine does not inflate the way it does wall-clock time):

- ``index``: ``ModelRepository.index()``, the first call and the mean of ``--repeat`` later ones;
- ``folder read``: ``ModelRepository._scan_folder()``, what both of those and a load by name read;
- ``load``: ``await ModelRepository.load(name)`` (the repository API's load by name) for ``--repeat``
  distinct models whose files did not change, mean per load (the model's own build and load included);
- ``load by name, file changed``: a reload of those models after rewriting each one's settings file.

Each line also gives the settings files opened per call (an audit hook counts ``open`` events).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

OPENED: list[str] = []
COUNTING = [True]


def _audit(event: str, args: tuple) -> None:
    if COUNTING[0] and event == "open" and args and isinstance(args[0], (str, os.PathLike)) and str(args[0]).endswith("model-settings.json"):
        OPENED.append(str(args[0]))


def make_folder(root: Path, count: int) -> None:
    for i in range(count):
        folder = root / f"m{i:04d}"
        folder.mkdir(parents=True)
        (folder / "model-settings.json").write_text(json.dumps(
            {"name": folder.name, "implementation": "modelport.model.Model", "parameters": {"extra": {"i": i}}}))
    then = time.time_ns() - 60 * 10**9
    for path in [root, *root.rglob("*")]:
        os.utime(path, ns=(then, then))


def measure(label: str, calls: int, fn) -> str:
    OPENED.clear()
    cpu = time.process_time()
    for i in range(calls):
        fn(i)
    cpu = time.process_time() - cpu
    return f"{label:<28} {cpu / calls * 1e3:9.2f} ms CPU/call   {len(OPENED) / calls:8.1f} settings files opened/call"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    import modelport
    from modelport.repository.entries import ModelRepository

    sys.addaudithook(_audit)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "models"
        make_folder(root, args.models)
        # As a server meets its folder: files last changed (ctime too, which utime cannot put back) longer
        # ago than the 2 s within which a read is not trusted (discovery.RACY_NS).
        time.sleep(2.5)
        repo = ModelRepository(str(root))
        loop = asyncio.new_event_loop()
        names = [f"m{i:04d}" for i in range(0, args.models, max(1, args.models // args.repeat))][: args.repeat]

        def load(i: int) -> None:
            assert loop.run_until_complete(repo.load(names[i]))

        def load_changed(i: int) -> None:
            COUNTING[0] = False  # the bench's own write is not the server's read
            (root / names[i] / "model-settings.json").write_text(json.dumps(
                {"name": names[i], "implementation": "modelport.model.Model", "platform": "changed"}))
            COUNTING[0] = True
            load(i)

        print(f"modelport {modelport.__version__} from {Path(modelport.__file__).parent}, {args.models} models")
        print(measure("index, first call", 1, lambda i: repo.index()))
        print(measure("index, later calls", args.repeat, lambda i: repo.index()))
        print(measure("folder read (_scan_folder)", args.repeat, lambda i: repo._scan_folder()))
        print(measure("load by name", args.repeat, load))
        print(measure("load by name, file changed", args.repeat, load_changed))
        loop.close()


if __name__ == "__main__":
    main()
