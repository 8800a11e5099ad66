"""The worker process never loads the HTTP layer: importing every worker module pulls in no
Litestar module (the import-linter contracts in pyproject.toml say the same statically)."""

from __future__ import annotations

import subprocess
import sys


def test_the_worker_loads_no_litestar() -> None:
    program = (
        "import sys\n"
        "import worker.main, worker.jobs, worker.sweep, worker.webhooks, worker.evaluate\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in {'litestar', 'uvicorn'})\n"
        "print(len(loaded), loaded[:5])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.startswith("0 "), done.stdout


def test_the_command_line_loads_what_a_command_needs_when_it_runs() -> None:
    """``patrolsync --help`` answers at once: importing the command line loads neither the
    HTTP framework nor the database libraries, the worker's queue or the HTTP server."""
    program = (
        "import sys\n"
        "import patrolsync.cli\n"
        "heavy = {'litestar', 'sqlalchemy', 'sqlmodel', 'alembic', 'arq', 'uvicorn', 'redis',\n"
        "         'asyncpg', 'aiosqlite', 'httpx', 'msgspec'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout
