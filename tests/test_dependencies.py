"""The installed dependencies are the ones users get: the newest litellm the registry serves,
inside the ranges pyproject.toml declares, with no broken requirement (so the provider tests
in this run ran on that litellm)."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys

import pytest
from packaging.requirements import Requirement


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=120)


def _declared(name: str) -> Requirement:
    for line in importlib.metadata.requires("hive-actors") or ():
        req = Requirement(line)
        if req.name == name and req.marker is None:
            return req
    raise AssertionError(f"hive-actors declares no dependency on {name}")


def test_installed_requirements_are_consistent():
    result = _pip("check")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["litellm", "openai", "mcp", "pydantic", "httpx-sse"])
def test_installed_versions_are_inside_the_declared_ranges(name):
    req = _declared(name)
    installed = importlib.metadata.version(name)
    assert req.specifier.contains(installed, prereleases=True), f"{name} {installed} outside {req}"


def test_litellm_is_the_newest_release_the_registry_serves():
    result = _pip("index", "versions", "litellm")
    found = re.search(r"^litellm \(([^)]+)\)", result.stdout, re.MULTILINE)
    if result.returncode != 0 or not found:
        if os.environ.get("CI"):
            pytest.fail(f"cannot ask the registry for litellm's versions: {result.stderr[-500:]}")
        pytest.skip("package registry not reachable")
    newest = found.group(1)
    installed = importlib.metadata.version("litellm")
    if not _declared("litellm").specifier.contains(newest):
        pytest.skip(f"litellm {newest} is outside the declared range (excluded on purpose)")
    assert installed == newest, (
        f"litellm {installed} installed, the registry serves {newest}: `make test` installs the "
        "newest (rm .venv/.installed to refresh a local venv)"
    )
