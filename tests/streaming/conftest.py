from __future__ import annotations

import asyncio
import time


async def wait_for(condition, timeout=30.0, what="condition"):
    """Poll ``condition()`` until true (no fixed sleeps); fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
