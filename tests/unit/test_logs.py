"""Logs: an error's traceback is in its line; lines are rendered and written off the caller's
thread; no password of a URL is written."""

from __future__ import annotations

import io
import json
import logging
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog

from server import logs
from server.app import create_app
from server.db import make_engine
from server.routes import sync as sync_routes
from server.settings import Settings


class Recording(io.StringIO):
    """A stream that notes which thread writes to it."""

    def __init__(self) -> None:
        super().__init__()
        self.writers: set[str] = set()

    def write(self, text: str) -> int:
        self.writers.add(threading.current_thread().name)
        return super().write(text)


@pytest.fixture
def out() -> Iterator[Recording]:
    stream = Recording()
    yield stream
    logs.configure("WARNING")


def _fail() -> None:
    raise RuntimeError("the disk is on fire")


def test_a_json_error_line_carries_its_traceback(out: Recording) -> None:
    logs.configure("INFO", as_json=True, stream=out)
    try:
        _fail()
    except RuntimeError:
        structlog.get_logger("patrolsync.test").exception("unhandled error", path="/x")
    logs.flush()
    line = json.loads(out.getvalue().strip().splitlines()[-1])
    assert line["event"] == "unhandled error" and line["level"] == "error"
    assert "Traceback" in line["exception"] and "the disk is on fire" in line["exception"]
    assert "_fail" in line["exception"]


def test_an_exception_passed_as_exc_info_is_rendered_too(out: Recording) -> None:
    logs.configure("INFO", as_json=True, stream=out)
    try:
        _fail()
    except RuntimeError as exc:
        caught = exc
    structlog.get_logger("patrolsync.test").error("later", exc_info=caught)
    logs.flush()
    assert "the disk is on fire" in json.loads(out.getvalue().strip())["exception"]


def test_lines_are_written_by_another_thread_than_the_callers(out: Recording) -> None:
    logs.configure("INFO", as_json=False, stream=out)
    log = structlog.get_logger("patrolsync.test")
    for n in range(50):
        try:
            _fail()
        except RuntimeError:
            log.exception("unhandled error", n=n)
    logs.flush()
    text = out.getvalue()
    assert text.count("RuntimeError: the disk is on fire") == 50
    assert "Traceback" in text
    assert out.writers and threading.current_thread().name not in out.writers


@pytest.mark.parametrize("as_json", [True, False])
def test_no_password_of_a_url_is_written(out: Recording, as_json: bool) -> None:
    logs.configure("INFO", as_json=as_json, stream=out)
    url = "postgresql+asyncpg://patrol:s3cret-pw@127.0.0.1:5432/db"
    try:
        raise OSError(f"cannot reach {url}")
    except OSError:
        structlog.get_logger("patrolsync.test").exception("database unavailable", url=url)
    logs.flush()
    text = out.getvalue()
    assert "s3cret-pw" not in text
    assert "patrol:***@127.0.0.1" in text


def test_tracebacks_show_no_local_variables(out: Recording) -> None:
    logs.configure("INFO", as_json=False, stream=out)
    token = "tok-very-secret"
    try:
        raise RuntimeError(f"failed after {len(token)} chars")
    except RuntimeError:
        structlog.get_logger("patrolsync.test").exception("unhandled error")
    logs.flush()
    assert "failed after" in out.getvalue()
    assert "tok-very-secret" not in out.getvalue()


async def test_the_apps_unhandled_error_line_has_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", log_json=True)
    engine = make_engine(settings)
    app = create_app(settings, engine=engine)

    def broken(_: object) -> None:
        raise RuntimeError("a bug in a handler")

    monkeypatch.setattr(sync_routes, "services", broken)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/v1/sync/config")
    finally:
        await engine.dispose()
    assert response.status_code == 500
    assert "a bug in a handler" not in response.text
    logs.flush()
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    (error,) = [x for x in lines if x["event"] == "unhandled error"]
    assert error["path"] == "/v1/sync/config"
    assert "RuntimeError: a bug in a handler" in error["exception"]
    assert "broken" in error["exception"]


def test_a_stalled_output_never_blocks_the_caller(out: Recording) -> None:
    """The writer is stuck: log calls still return at once, and what cannot wait is dropped."""
    release = threading.Event()

    class Stuck(Recording):
        def write(self, text: str) -> int:
            release.wait(10)
            return super().write(text)

    stuck = Stuck()
    logs.configure("INFO", stream=stuck)
    before = logs.dropped()
    log = structlog.get_logger("patrolsync.test")
    try:
        for n in range(logs.QUEUED + 50):
            log.info("line", n=n)
        assert logs.dropped() - before >= 49
    finally:
        release.set()
    logs.flush()


def _lines(out: Recording) -> list[dict[str, object]]:
    logs.flush()
    return [json.loads(x) for x in out.getvalue().splitlines()]


def test_a_librarys_lines_go_through_the_same_pipeline(out: Recording) -> None:
    logs.configure("INFO", as_json=True, stream=out)
    logging.getLogger("alembic.runtime.migration").info("Running upgrade %s -> %s", "0005", "0006")
    logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")
    logging.getLogger("arq.worker").debug("below the level: not written")
    try:
        _fail()
    except RuntimeError:
        logging.getLogger("asyncio").exception("Task exception was never retrieved")
    alembic, uvicorn, failed = _lines(out)
    assert alembic == {
        "event": "Running upgrade 0005 -> 0006",
        "level": "info",
        "logger": "alembic.runtime.migration",
        "timestamp": alembic["timestamp"],
    }
    assert str(alembic["timestamp"]).endswith("Z")
    assert (uvicorn["level"], uvicorn["logger"]) == ("warning", "uvicorn.error")
    assert failed["level"] == "error" and "the disk is on fire" in str(failed["exception"])


def test_a_warning_is_a_line(out: Recording) -> None:
    logging.captureWarnings(False)  # pytest put its own hook back: configure installs ours
    logs.configure("INFO", as_json=True, stream=out)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a deprecated call", DeprecationWarning, stacklevel=1)
    (line,) = _lines(out)
    assert (line["logger"], line["level"]) == ("py.warnings", "warning")
    assert "DeprecationWarning: a deprecated call" in str(line["event"])


def test_a_librarys_line_carries_the_context_bound_where_it_was_logged(out: Recording) -> None:
    logs.configure("INFO", as_json=True, stream=out)
    with structlog.contextvars.bound_contextvars(request_id="r-7"):
        logging.getLogger("sqlalchemy.pool").warning("connection invalidated")
        structlog.get_logger("patrolsync.test").info("ours")
    logging.getLogger("sqlalchemy.pool").warning("outside")
    lib, ours, outside = _lines(out)
    assert lib["request_id"] == "r-7" and ours["request_id"] == "r-7"
    assert "request_id" not in outside


def test_httpx_lines_below_warning_are_not_written(out: Recording) -> None:
    logs.configure("DEBUG", as_json=True, stream=out)
    logging.getLogger("httpx").info('HTTP Request: POST https://hook.example/x?token=t "200"')
    logging.getLogger("httpx").warning("retrying")
    assert [x["event"] for x in _lines(out)] == ["retrying"]


@pytest.mark.parametrize("as_json", [True, False])
def test_no_password_in_a_librarys_line(out: Recording, as_json: bool) -> None:
    logs.configure("INFO", as_json=as_json, stream=out)
    logging.getLogger("arq.connections").info("redis://:s3cret-pw@127.0.0.1:6379/0 unreachable")
    logs.flush()
    assert "s3cret-pw" not in out.getvalue() and ":***@127.0.0.1" in out.getvalue()


def test_uvicorns_access_log_stays_off_and_its_other_lines_reach_the_pipeline(
    out: Recording,
) -> None:
    """uvicorn writes its access line when ``uvicorn.access`` has any handler: it has none."""
    logging.getLogger("uvicorn").addHandler(logging.StreamHandler(io.StringIO()))
    logging.getLogger("uvicorn").propagate = False
    logs.configure("INFO", as_json=True, stream=out)
    assert not logging.getLogger("uvicorn.access").hasHandlers()
    logging.getLogger("uvicorn.error").info("Started server process [1]")
    (line,) = _lines(out)
    assert (line["logger"], line["event"]) == ("uvicorn.error", "Started server process [1]")


@pytest.mark.parametrize("as_json", [True, False])
def test_no_secret_query_value_in_a_line(out: Recording, as_json: bool) -> None:
    logs.configure("INFO", as_json=as_json, stream=out)
    logging.getLogger("uvicorn.error").warning(
        'Invalid request "GET /invite/x?code=1234-5678&token=tok-9 HTTP/1.1"'
    )
    structlog.get_logger("patrolsync.test").info("seen", url="https://h/x?access_token=tok-8")
    logs.flush()
    text = out.getvalue()
    for secret in ("1234-5678", "tok-9", "tok-8"):
        assert secret not in text
    assert "?code=***&token=***" in text


def test_a_new_level_applies_to_loggers_already_used(out: Recording) -> None:
    log = structlog.get_logger("patrolsync.test.level")
    logs.configure("WARNING", as_json=True, stream=out)
    log.info("dropped")
    logs.configure("INFO", as_json=True, stream=out)
    log.info("written")
    assert [x["event"] for x in _lines(out)] == ["written"]


def test_a_level_set_on_a_library_before_does_not_hide_its_lines(out: Recording) -> None:
    """uvicorn's own configuration, or a quieter caller in this process (the demo quiets arq),
    leaves levels on library loggers: configure() brings them back to the root's level."""
    for name in ("arq", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        logs.configure("INFO", as_json=True, stream=out)
        logging.getLogger("arq.worker").info("job started")
        logging.getLogger("uvicorn.error").info("Started server process [1]")
        assert [x["event"] for x in _lines(out)] == ["job started", "Started server process [1]"]
    finally:
        for name in ("arq", "uvicorn.error"):
            logging.getLogger(name).setLevel(logging.NOTSET)
