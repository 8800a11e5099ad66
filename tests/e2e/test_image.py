"""The container image installs what its commands need (stands in for ``docker build``).

The files the Dockerfile's build stage copies are staged into an empty folder, exactly as the
``COPY`` lines name them; a wheel is built from that folder alone and installed in a fresh
virtual environment; then every command the compose file runs (and the image's CMD) is run
there from an empty working directory, so nothing of the checkout can be imported by accident.
A package left out of the Dockerfile makes the import of every module, or a command, fail.

The project's third-party dependencies are lent to the fresh environment from the test's own
(a path entry, not a site directory: the checkout's editable install is not loaded), so the test
needs no network; the project itself is installed from the staged wheel only.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"
CONTEXT = ROOT  # compose builds with context ".." (the repository root)
PIP = [sys.executable, "-m", "pip"]
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.db", "*.db-wal", "*.db-shm")


def _build_stage_copies() -> list[tuple[list[str], str]]:
    """``COPY`` lines of the first stage (sources relative to the context, destination)."""
    copies: list[tuple[list[str], str]] = []
    stage = 0
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.upper().startswith("FROM "):
            stage += 1
            continue
        if stage == 1 and line.upper().startswith("COPY "):
            words = shlex.split(line)[1:]
            assert not any(w.startswith("--from") for w in words), line
            *sources, dest = [w for w in words if not w.startswith("--")]
            copies.append((sources, dest))
    assert copies, "the Dockerfile's build stage copies nothing"
    return copies


def _stage(into: Path) -> Path:
    for sources, dest in _build_stage_copies():
        as_dir = dest.endswith("/") or len(sources) > 1
        for source in sources:
            src = CONTEXT / source
            assert src.exists(), f"the Dockerfile copies {source!r}, which does not exist"
            target = into / dest / src.name if as_dir else into / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, target, ignore=IGNORED)
            else:
                shutil.copy2(src, target)
    return into


def _declared_packages() -> list[str]:
    """Top-level packages pyproject.toml ships (its ``packages.find`` include patterns)."""
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = doc["tool"]["setuptools"]["packages"]["find"]["include"]
    return [p.rstrip("*") for p in patterns]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Image:
    """A fresh venv with the staged project installed; commands run from an empty folder."""

    def __init__(self, venv: Path, workdir: Path) -> None:
        self.venv = venv
        self.workdir = workdir
        self.bin = venv / "bin"

    def env(self, **extra: str) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith("PATROLSYNC_")}
        keep.pop("PYTHONPATH", None)
        return {
            **keep,
            "PATH": f"{self.bin}{os.pathsep}{keep.get('PATH', '')}",
            "PATROLSYNC_DATABASE_URL": f"sqlite+aiosqlite:///{self.workdir / 'image.db'}",
            **extra,
        }

    def run(self, words: list[str], **env: str) -> subprocess.CompletedProcess[str]:
        program = self.bin / words[0]
        return subprocess.run(
            [str(program), *words[1:]],
            cwd=self.workdir,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    base = tmp_path_factory.mktemp("image")
    staged = _stage(base / "src")
    wheels = base / "wheels"
    build = subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(staged)],
        cwd=base,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("patrolsync-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    site.mkdir(parents=True, exist_ok=True)
    # Third-party dependencies from this environment, as a plain path entry placed after the
    # fresh venv's own site-packages (its .pth files, the editable install among them, are not
    # processed).
    (site / "zz_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    install = subprocess.run(
        [*PIP, "--python", str(venv / "bin" / "python"), "install", "--no-deps", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    workdir = base / "data"
    workdir.mkdir()
    yield Image(venv, workdir)


def _compose_commands() -> dict[str, list[str]]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    found: dict[str, list[str]] = {}
    for name, service in doc["services"].items():
        if "build" not in service and not str(service.get("image", "")).startswith("patrolsync"):
            continue
        command = service["command"]
        found[name] = shlex.split(command) if isinstance(command, str) else list(command)
        check = service.get("healthcheck", {}).get("test")
        if check and check[0] == "CMD" and check[1] == "patrolsync":
            found[f"{name} healthcheck"] = list(check[1:])
    return found


def _dockerfile_cmd() -> list[str]:
    lines = [ln.strip() for ln in DOCKERFILE.read_text(encoding="utf-8").splitlines()]
    cmd = [ln[4:].strip() for ln in lines if ln.upper().startswith("CMD ")][-1]
    words: list[str] = json.loads(cmd)
    return words


def test_the_installed_package_holds_every_module(image: Image) -> None:
    """Every package pyproject ships is in the image, and every module of it imports."""
    packages = _declared_packages()
    program = (
        "import importlib, pkgutil, sys\n"
        f"for name in {packages!r}:\n"
        "    pkg = importlib.import_module(name)\n"
        "    assert 'site-packages' in pkg.__file__, pkg.__file__\n"
        "    for info in pkgutil.walk_packages(pkg.__path__, name + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [str(image.bin / "python"), "-c", program],
        cwd=image.workdir,
        env=image.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_every_compose_command_starts_in_the_image(image: Image) -> None:
    commands = _compose_commands()
    assert {"migrate", "server", "worker"} <= set(commands)
    for name, words in [*commands.items(), ("Dockerfile CMD", _dockerfile_cmd())]:
        done = image.run([*words, "--help"])
        assert done.returncode == 0, f"{name}: {words}: {done.stderr[-2000:]}"
        assert "Usage" in done.stdout, name


def test_the_image_migrates_serves_and_runs_the_worker(image: Image, redis_url: str) -> None:
    """The compose file's commands for real, on SQLite: migrate, serve until ready, a burst
    of the worker and the sweep (the worker's code paths load in the installed package)."""
    migrated = image.run(["patrolsync", "migrate"])
    assert migrated.returncode == 0, migrated.stderr
    queue = f"patrolsync:test:image:{os.getpid()}"
    worker = image.run(
        ["patrolsync", "worker", "--burst"],
        PATROLSYNC_REDIS_URL=redis_url,
        PATROLSYNC_QUEUE_NAME=queue,
    )
    assert worker.returncode == 0, worker.stderr
    sweep = image.run(["patrolsync", "sweep"])
    assert sweep.returncode == 0, sweep.stderr
    health = image.run(
        ["patrolsync", "worker", "--check"],
        PATROLSYNC_REDIS_URL=redis_url,
        PATROLSYNC_QUEUE_NAME=queue,
    )
    assert health.returncode == 1, health.stderr  # no worker of this queue is running
    assert "Traceback" not in health.stderr

    port = _free_port()
    log = (image.workdir / "serve.log").open("wb")
    server = subprocess.Popen(
        [str(image.bin / "patrolsync"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=image.workdir,
        env=image.env(),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.2)
        assert status == 200, (image.workdir / "serve.log").read_text(errors="replace")[-2000:]
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
