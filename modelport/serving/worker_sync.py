"""Repository and routing actions in every front-end worker: one pipe per worker to the supervisor.

With ``workers=N`` a load, an unload or a traffic change (``traffic``, ``promote``, ``rollback``)
reaches the one process the kernel gave the connection to. The worker that receives it applies it
and, at the same time, sends it up its pipe; the supervisor (:class:`Hub`) hands it to every sibling
that has joined, collects their answers and sends the result back; the client's answer waits for it
(:class:`Link`). The supervisor keeps the last load/unload per model and the routing actions since
(the last :data:`ROUTING_LOG` per model: the router's rollback history is bounded too), and a worker
that starts later (a replacement) replays them before it takes connections.

Messages are small tuples pickled over ``multiprocessing`` pipes (``arg``: an unload's version, a
traffic policy, a promoted version):
worker → hub ``("act", id, action, name, arg)``, ``("join",)``, ``("done", key, error)``;
hub → worker ``("apply", key, action, name, arg)``, ``("result", id, errors)``,
``("log", [(name, action)], [(name, action, arg)])``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from ..errors import ModelportError

if TYPE_CHECKING:
    from ..dataplane.plane import DataPlane

logger = logging.getLogger("modelport")

ROUTING = ("traffic", "promote", "rollback")
ROUTING_LOG = 256  # routing actions kept per model for replay


# -- in the supervisor ---------------------------------------------------------------------------
class Hub:
    def __init__(self) -> None:
        self.conns: dict[int, Connection] = {}
        self.joined: set[int] = set()
        self.log: dict[str, str] = {}  # model name → its last load/unload, in order
        self.routing: dict[str, list[tuple[str, Any]]] = {}  # model name → routing actions since, in order
        self._pending: dict[tuple[int, int], tuple[set[int], list[str]]] = {}
        self._keys = itertools.count()

    def add(self, index: int, conn: Connection) -> None:
        self.conns[index] = conn
        self.joined.discard(index)

    def remove(self, index: int) -> None:
        """A worker died: stop waiting for it; drop what it started (it cannot take an answer)."""
        conn = self.conns.pop(index, None)
        if conn is not None:
            conn.close()
        self.joined.discard(index)
        for key in list(self._pending):
            waiting, errors = self._pending[key]
            if key[0] == index:
                del self._pending[key]
            else:
                waiting.discard(index)
                self._finish_if_done(key)

    def handle(self, index: int) -> None:
        """Read one message from worker ``index``."""
        conn = self.conns[index]
        try:
            message = conn.recv()
        except (EOFError, OSError):
            self.remove(index)
            return
        kind = message[0]
        if kind == "join":
            routing = [(name, action, arg) for name, actions in self.routing.items() for action, arg in actions]
            self._send(index, ("log", list(self.log.items()), routing))
            self.joined.add(index)
        elif kind == "act":
            _, request_id, action, name, arg = message
            if action in ROUTING:
                actions = self.routing.setdefault(name, [])
                actions.append((action, arg))
                del actions[:-ROUTING_LOG]
            elif arg is None:  # one version's unload (a routing swap) leaves the model's state as it is
                self.log.pop(name, None)
                self.log[name] = action
                if action == "unload":  # an unload clears the model's policy (DataPlane.apply_in_this_worker)
                    self.routing.pop(name, None)
            key = (index, request_id)
            siblings = {i for i in self.joined if i != index}
            self._pending[key] = (siblings, [])
            for sibling in siblings:
                self._send(sibling, ("apply", key, action, name, arg))
            self._finish_if_done(key)
        elif kind == "done":
            _, key, error = message
            entry = self._pending.get(tuple(key))
            if entry is not None:
                entry[0].discard(index)
                if error:
                    entry[1].append(error)
                self._finish_if_done(tuple(key))

    def _finish_if_done(self, key: tuple[int, int]) -> None:
        waiting, errors = self._pending[key]
        if not waiting:
            del self._pending[key]
            self._send(key[0], ("result", key[1], errors))

    def _send(self, index: int, message: Any) -> None:
        conn = self.conns.get(index)
        if conn is None:
            return
        try:
            conn.send(message)
        except OSError:
            pass  # it died; its sentinel tells the supervisor


# -- in a worker ---------------------------------------------------------------------------------
class Link:
    """A worker's end: runs repository actions everywhere, and applies its siblings' actions here."""

    def __init__(self, conn: Connection, dataplane: "DataPlane"):
        self.conn = conn
        self.dataplane = dataplane
        self._ids = itertools.count()
        self._waiting: dict[int, asyncio.Future] = {}
        self._log: asyncio.Future | None = None
        self._tasks: set[asyncio.Task] = set()

    def start(self) -> None:
        asyncio.get_running_loop().add_reader(self.conn.fileno(), self._readable)

    def close(self) -> None:
        try:
            asyncio.get_running_loop().remove_reader(self.conn.fileno())
        except (OSError, ValueError):
            pass

    async def everywhere(self, action: str, name: str, arg: Any = None) -> Any:
        """Apply ``action`` here and in every sibling; returns this worker's answer once all have
        applied it, raises if any failed."""
        request_id = next(self._ids)
        answer = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answer
        self.conn.send(("act", request_id, action, name, arg))
        try:
            result = await self.dataplane.apply_in_this_worker(action, name, arg)
        finally:
            errors = await answer
        if errors:
            raise ModelportError(
                f"{action.capitalize()} of model {name} failed in {len(errors)} other worker process(es): {errors[0]}"
            )
        return result

    async def join(self) -> None:
        """Catch up with the actions taken before this worker started; from now on it gets every one."""
        self._log = asyncio.get_running_loop().create_future()
        self.conn.send(("join",))
        log, routing = await self._log
        for name, action in log:
            if action == "load" and self.dataplane.model_ready_in_this_worker(name):
                continue  # loaded at start-up already, from the same folder
            try:
                await self.dataplane.apply_in_this_worker(action, name)
            except Exception as exc:  # noqa: BLE001 - the model's state says what went wrong
                logger.warning("Replaying %s of model %s: %s", action, name, exc)
        for name, action, arg in routing:  # the traffic policies the siblings serve with
            try:
                await self.dataplane.apply_in_this_worker(action, name, arg)
            except Exception as exc:  # noqa: BLE001 - as it failed in the siblings
                logger.warning("Replaying %s of model %s: %s", action, name, exc)

    def _readable(self) -> None:
        try:
            message = self.conn.recv()
        except (EOFError, OSError):
            # The supervisor is gone (killed): drain and exit as on SIGTERM rather than live on orphaned.
            self.close()
            logger.error("The supervisor process is gone; stopping this worker")
            signal.raise_signal(signal.SIGTERM)
            return
        kind = message[0]
        if kind == "result":
            future = self._waiting.pop(message[1], None)
            if future is not None and not future.done():
                future.set_result(message[2])
        elif kind == "log" and self._log is not None and not self._log.done():
            self._log.set_result((message[1], message[2]))
        elif kind == "apply":
            task = asyncio.ensure_future(self._apply(*message[1:]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _apply(self, key: Any, action: str, name: str, arg: Any) -> None:
        error = ""
        try:
            await self.dataplane.apply_in_this_worker(action, name, arg)
        except Exception as exc:  # noqa: BLE001 - reported to the worker that asked
            error = str(exc)
        try:
            self.conn.send(("done", key, error))
        except OSError:
            pass


__all__ = ["Hub", "Link"]
