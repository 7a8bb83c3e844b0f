"""Server-sent events, read incrementally (pure: feed lines, get events). Used by the clients."""

from __future__ import annotations

from typing import Iterator


class SSEParser:
    """Feed it text lines (without their line ending); it yields (event, data) when a blank line ends one."""

    def __init__(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> Iterator[tuple[str | None, str]]:
        if not line:
            if self._data:
                yield self._event, "\n".join(self._data)
            self._event, self._data = None, []
            return
        if line.startswith(":"):
            return  # a comment (keep-alive)
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)

    def end(self) -> Iterator[tuple[str | None, str]]:
        """The last event, when the stream ended without its blank line."""
        if self._data:
            yield self._event, "\n".join(self._data)
        self._event, self._data = None, []
