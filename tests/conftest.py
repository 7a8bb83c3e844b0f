from __future__ import annotations

import httpx
import pytest

from .helpers import make_server


@pytest.fixture
async def serve():
    """serve(models, **settings) -> (server, client): a real server on port 0 and an httpx client for it."""
    started = []

    async def _serve(models=(), **kwargs):
        server = make_server(**kwargs)
        await server.start_async(list(models))
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30)
        started.append((server, client))
        return server, client

    yield _serve
    for server, client in started:
        await client.aclose()
        await server.stop(grace_period=2)
