"""A Redis master, one replica and one sentinel of a test's own, on free ports in a temporary
folder: started together, the master switched at will, all stopped afterwards.

Debian's ``redis-sentinel`` is used when installed; otherwise ``redis-server --sentinel`` (the
same program). Missing binaries skip the test, and fail it under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio

from tests.conftest import IN_CI

SERVICE = "patrolsync"
DOWN_AFTER_MS = 1000
"""A master silent this long is down for the sentinel (and is failed over at once: quorum 1)."""
WAIT_S = 60.0
"""How long a test waits for something the trio must reach before it fails (not a timing
assertion: a bound, so that a broken failover fails instead of hanging)."""


def binaries() -> tuple[str, list[str]]:
    """The redis-server program, and the command that starts a sentinel from a config file."""
    server = shutil.which("redis-server")
    if server is None:
        if IN_CI:
            pytest.fail("redis-server is required in CI (Debian package redis-server)")
        pytest.skip("redis-server not installed")
    sentinel = shutil.which("redis-sentinel")
    return server, [sentinel] if sentinel else [server, "--sentinel"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(check: Callable[[], Awaitable[bool]], what: str, *, every_s: float = 0.1) -> None:
    """Wait until ``check()`` is true; fail after ``WAIT_S``, saying what never happened."""
    deadline = time.monotonic() + WAIT_S
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {WAIT_S:.0f} s")
        await asyncio.sleep(every_s)


class SentinelTrio:
    """Two redis-servers (one master, one replica of it) and one sentinel watching them as
    ``SERVICE``; :attr:`url` is the ``redis+sentinel://`` URL a worker is given."""

    def __init__(self, workdir: Path) -> None:
        self.server, self.sentinel_cmd = binaries()
        self.workdir = workdir
        self.ports = [free_port(), free_port()]
        self.sentinel_port = free_port()
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SERVICE}/0"

    def _spawn(self, port: int, argv: list[str]) -> None:
        log = (self.workdir / f"{port}.log").open("wb")
        self.processes[port] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def _redis(self, port: int, *extra: str) -> None:
        folder = self.workdir / str(port)
        folder.mkdir(exist_ok=True)
        self._spawn(
            port,
            [
                *(self.server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "no", "--dir", str(folder), "--repl-diskless-sync-delay", "0"),
                *extra,
            ],
        )

    def client(self, port: int) -> redis.asyncio.Redis:
        return redis.asyncio.Redis(
            host="127.0.0.1", port=port, socket_connect_timeout=1, decode_responses=True
        )

    def alive(self) -> None:
        """Fail at once (with the program's last words) when one of the trio has exited."""
        for port, process in self.processes.items():
            if process.poll() is not None:
                words = (self.workdir / f"{port}.log").read_text(errors="replace")[-500:]
                raise AssertionError(f"the redis on {port} exited: {words}")

    async def _info(self, port: int) -> dict[str, object]:
        self.alive()
        async with self.client(port) as c:
            try:
                return dict(await c.info("replication"))
            except (OSError, redis.RedisError):
                return {}

    async def start(self) -> None:
        master, replica = self.ports
        self._redis(master)
        self._redis(replica, "--replicaof", "127.0.0.1", str(master))

        async def replicating() -> bool:
            return (await self._info(replica)).get("master_link_status") == "up"

        await until(replicating, "the replica syncs with the master")
        conf = self.workdir / "sentinel.conf"  # a sentinel rewrites its config: a file of its own
        conf.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {self.workdir}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {master} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
        )
        self._spawn(self.sentinel_port, [self.sentinel_cmd[0], str(conf), *self.sentinel_cmd[1:]])
        # Ready when the sentinel answers for both: it names the master (a first query can come
        # before it does, and gave None) and counts the replica as one it may promote.
        await self.wait_for_master(master)
        await self.wait_for_replica(replica)

    async def master_port(self) -> int | None:
        async with self.client(self.sentinel_port) as c:
            try:
                addr = await c.sentinel_get_master_addr_by_name(SERVICE)
            except (OSError, redis.RedisError):
                return None
        return int(addr[1]) if addr else None

    async def wait_for_replica(self, port: int) -> None:
        """Until the sentinel counts ``port`` as a healthy replica (one it may promote)."""

        async def known() -> bool:
            async with self.client(self.sentinel_port) as c:
                try:
                    replicas = await c.sentinel_slaves(SERVICE)
                except (OSError, redis.RedisError):
                    return False
            info = await self._info(port)
            return info.get("master_link_status") == "up" and any(
                int(r["port"]) == port and r.get("is_slave") and not r.get("is_sdown")
                for r in replicas
            )

        await until(known, f"the sentinel knows the replica on {port}")

    async def wait_for_master(self, port: int) -> None:
        async def promoted() -> bool:
            info = await self._info(port)
            return await self.master_port() == port and info.get("role") == "master"

        await until(promoted, f"the sentinel promotes {port}")

    async def failover(self) -> int:
        """``SENTINEL FAILOVER``: the replica becomes the master; returns its port."""
        old = await self.master_port()
        (new,) = [p for p in self.ports if p != old]
        async with self.client(self.sentinel_port) as c:
            await c.execute_command("SENTINEL", "FAILOVER", SERVICE)
        await self.wait_for_master(new)
        return new

    def kill(self, port: int) -> None:
        """SIGKILL: the server vanishes without a word (what it had not replicated is lost)."""
        process = self.processes.pop(port)
        process.kill()
        process.wait(10)

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self.processes.clear()
