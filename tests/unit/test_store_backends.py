"""The store's backend is chosen by the dialect, once: each database has one backend, and no
store function tests the dialect itself (the store suite runs every function on both)."""

from __future__ import annotations

import pathlib

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from server.store import backend, lite, pg
from server.store.interface import Backend

STORE = pathlib.Path(backend.__file__).parent


@pytest.mark.parametrize(
    ("url", "chosen"),
    [("sqlite+aiosqlite://", lite.BACKEND), ("postgresql+asyncpg://u@127.0.0.1/x", pg.BACKEND)],
)
def test_the_engine_dialect_chooses_the_backend(url: str, chosen: Backend) -> None:
    engine = create_async_engine(url)
    assert backend.of(engine) is chosen
    assert chosen.name == engine.dialect.name


def test_no_store_module_tests_the_dialect() -> None:
    offenders = [
        str(path.relative_to(STORE))
        for path in sorted(STORE.rglob("*.py"))
        if path.name != "backend.py" and "dialect.name" in path.read_text()
    ]
    assert offenders == []
