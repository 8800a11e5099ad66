"""The licence is declared once and shipped: ``pyproject.toml``'s SPDX expression, the LICENSE
file it names and the installed package's metadata agree; the changelog has the version."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_the_licence_field_and_the_licence_file_agree() -> None:
    assert PROJECT["license"] == "Apache-2.0"
    (name,) = PROJECT["license-files"]
    text = (ROOT / name).read_text(encoding="utf-8")
    assert "Apache License" in text.splitlines()[1]
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text  # the whole text, not a notice


def test_the_installed_metadata_carries_the_licence() -> None:
    meta = importlib.metadata.metadata("patrolsync")
    assert meta["License-Expression"] == PROJECT["license"]
    assert meta.get_all("License-File") == PROJECT["license-files"]


def test_the_changelog_has_an_unreleased_section_and_the_projects_version() -> None:
    headings = [
        line
        for line in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    ]
    assert headings[0] == "## [Unreleased]"
    assert any(h.startswith(f"## [{PROJECT['version']}] - ") for h in headings)
