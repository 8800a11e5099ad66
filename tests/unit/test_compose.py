"""docker/compose.yaml and docker/Dockerfile agree with the code (no Docker daemon needed).

Every service built from the project image must run a real ``patrolsync`` command with options
the command accepts; every ``depends_on`` target must exist; every long-running service must
have a healthcheck; the image's default CMD must be a real command too.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import fields
from pathlib import Path
from typing import Any

import typer
import yaml

from patrolsync.cli import app
from server.settings import PREFIX, Settings, load

DOCKER = Path(__file__).resolve().parents[2] / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
PROGRAM = "patrolsync"
SETTING_NAMES = {PREFIX + f.name.upper() for f in fields(Settings)}


def _compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), "compose.yaml must be a mapping"
    return doc


def _services() -> dict[str, dict[str, Any]]:
    services = _compose().get("services")
    assert isinstance(services, dict) and services, "compose.yaml has no services"
    return services


def _uses_project_image(service: dict[str, Any]) -> bool:
    return "build" in service or str(service.get("image", "")).startswith(PROGRAM)


def _project_services() -> dict[str, dict[str, Any]]:
    found = {name: s for name, s in _services().items() if _uses_project_image(s)}
    assert found, "no service is built from the project image"
    return found


def _words(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(w) for w in command]


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Targets of ``depends_on`` with their condition (short list form = service_started)."""
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _one_shots() -> set[str]:
    """Services some other service waits for to exit with status 0."""
    return {
        target
        for service in _services().values()
        for target, condition in _depends_on(service).items()
        if condition == "service_completed_successfully"
    }


def _check_cli(words: list[str], where: str) -> None:
    """Assert ``words`` is a ``patrolsync`` command line the Typer app would accept."""
    assert words, f"{where}: empty command"
    assert words[0] == PROGRAM, f"{where}: runs {words[0]!r}, not {PROGRAM!r}"
    assert len(words) >= 2, f"{where}: no subcommand"
    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    name, args = words[1], words[2:]
    assert name in commands, f"{where}: {name!r} is not one of {sorted(commands)}"
    # Parsing raises on an unknown option or a bad value; nothing is run.
    ctx = commands[name].make_context(name, list(args))
    assert ctx.command.name == name


def _dockerfile_cmd() -> list[str]:
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    cmds = [line.strip()[4:].strip() for line in lines if line.strip().upper().startswith("CMD ")]
    assert cmds, "the Dockerfile has no CMD"
    last = cmds[-1]  # as in Docker, the last CMD counts
    words = json.loads(last) if last.startswith("[") else shlex.split(last)
    assert all(isinstance(w, str) for w in words)
    return words


def test_project_services_run_real_patrolsync_commands() -> None:
    for name, service in _project_services().items():
        assert "command" in service, f"service {name!r} relies on the image CMD; name it"
        _check_cli(_words(service["command"]), f"service {name!r}")


def test_expected_services_and_commands_are_present() -> None:
    services = _services()
    assert {"postgres", "redis", "migrate", "server"} <= set(services)
    assert _words(services["migrate"]["command"])[:2] == [PROGRAM, "migrate"]
    server = _words(services["server"]["command"])
    assert server[:2] == [PROGRAM, "serve"]
    assert "--host" in server and server[server.index("--host") + 1] == "0.0.0.0"


def test_every_depends_on_target_exists() -> None:
    services = _services()
    for name, service in services.items():
        for target in _depends_on(service):
            assert target in services, f"service {name!r} depends on unknown {target!r}"
            assert target != name, f"service {name!r} depends on itself"


def test_depends_on_conditions_are_met_by_the_target() -> None:
    services = _services()
    for name, service in services.items():
        for target, condition in _depends_on(service).items():
            assert target in services, f"service {name!r} depends on unknown {target!r}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name!r} waits on {target!r} health"
    deps = _depends_on(services["server"])
    assert deps.get("migrate") == "service_completed_successfully"
    assert deps.get("redis") == "service_healthy"
    assert _depends_on(services["migrate"]).get("postgres") == "service_healthy"


def test_every_service_has_a_healthcheck_or_is_one_shot() -> None:
    one_shots = _one_shots()
    assert "migrate" in one_shots
    for name, service in _services().items():
        if name in one_shots:
            assert "healthcheck" not in service, f"one-shot {name!r} needs no healthcheck"
            assert "ports" not in service, f"one-shot {name!r} publishes no ports"
            continue
        check = service.get("healthcheck")
        assert isinstance(check, dict), f"service {name!r} has no healthcheck"
        test = check.get("test")
        assert test and test != ["NONE"], f"service {name!r} has an empty healthcheck"


def test_server_healthcheck_asks_readiness() -> None:
    test = _words(_services()["server"]["healthcheck"]["test"])
    assert test[0] in {"CMD", "CMD-SHELL"}
    assert test[1] == "python" and test[2] == "-c"
    assert "urllib" in test[3] and "/readyz" in test[3]
    compile(test[3], "<healthcheck>", "exec")  # the inline program is valid Python


def test_project_environment_is_valid_settings() -> None:
    for name, service in _project_services().items():
        env = service.get("environment", {})
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        env = {k: str(v) for k, v in env.items()}
        unknown = {k for k in env if k.startswith(PREFIX)} - SETTING_NAMES
        assert not unknown, f"service {name!r} sets unknown variables {sorted(unknown)}"
        settings = load(env)  # raises SettingsError naming a bad variable
        assert settings.database_url.startswith("postgresql+asyncpg://"), name
        assert not settings.is_sqlite


def test_dockerfile_cmd_is_a_real_command() -> None:
    words = _dockerfile_cmd()
    _check_cli(words, "Dockerfile CMD")
    assert words[1] == "serve"
    assert "--host" in words and words[words.index("--host") + 1] == "0.0.0.0"


def test_dockerfile_runs_as_non_root() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()]
    users = [line.split(None, 1)[1] for line in lines if line.upper().startswith("USER ")]
    assert users, "the Dockerfile never switches user"
    assert users[-1].split(":")[0] not in {"root", "0"}
