"""With the database unreachable: 503 with Retry-After, never a 500, nothing acknowledged."""

from __future__ import annotations

import httpx

from server.app import create_app
from server.db import make_engine
from server.settings import Settings
from tests.support import PROTOCOL, new_id


async def test_database_down_gives_503_with_retry_after() -> None:
    settings = Settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none")
    engine = make_engine(settings)
    app = create_app(settings, engine=engine)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            headers = {**PROTOCOL, "Authorization": "Bearer whatever"}
            body = {"push_id": str(new_id()), "device_time_ms": 1, "items": []}
            push = await client.post("/v1/sync/push", json=body, headers=headers)
            assert push.status_code == 503
            assert push.headers["retry-after"]
            assert push.json()["error"]["code"] == "service_unavailable"
            ready = await client.get("/readyz")
            assert ready.status_code == 503
    finally:
        await engine.dispose()
