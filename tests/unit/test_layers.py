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
