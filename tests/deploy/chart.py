"""Render the service chart as Helm would for one release, with the real Helm engine.

Why a module: the chart tests, the config check and the bootstrap Job test all need "the
objects of release <service>[-canary] with these values files", composed the way
``helm -f system.yaml -f <service>.yaml [-f variant] [-f canary.yaml]`` composes them.
``helm-python-sdk`` binds Helm's Go SDK (``libhelm_c``), so this is Helm's own template engine
and schema check, offline, without a ``helm`` binary.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "depthflow-service"
VALUES = ROOT / "deploy" / "helm" / "values"
SERVICES = ("collector", "aggregator", "peaks", "ai-fusion", "risk")
LANES = ("stable", "canary")
#: value variants beside the defaults: the chart's ci/ files (Bitnami's practice)
VARIANTS = (
    "default",
    *sorted(p.name.removesuffix("-values.yaml") for p in (CHART / "ci").glob("*-values.yaml")),
)
NAMESPACE = "depthflow"

Obj = dict[str, Any]


def merge(base: Obj, over: Obj) -> Obj:
    """Helm's ``-f`` coalescing: maps merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def value_files(service: str, lane: str, variant: str = "default") -> list[Path]:
    """The files a release is installed with, in ``-f`` order (the README's commands)."""
    files = [VALUES / "system.yaml", VALUES / f"{service}.yaml"]
    if variant != "default":
        files.append(CHART / "ci" / f"{variant}-values.yaml")
    if lane == "canary":
        files.append(VALUES / "canary.yaml")
    return files


def release_values(service: str, lane: str, variant: str = "default", extra: Obj | None = None) -> Obj:
    values: Obj = {}
    for path in value_files(service, lane, variant):
        values = merge(values, yaml.safe_load(path.read_text()) or {})
    return merge(values, extra or {})


def release_name(service: str, lane: str) -> str:
    return service if lane == "stable" else f"{service}-canary"


@functools.cache
def chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def render_values(name: str, values: Obj) -> dict[str, str]:
    """Template path -> manifest, as ``helm template`` renders them (schema checked first)."""
    return chart().render(values, name=name, namespace=NAMESPACE, is_install=True)


def objects(manifests: dict[str, str]) -> list[Obj]:
    """Every Kubernetes object in the rendered manifests (NOTES.txt is not one)."""
    return [
        doc
        for path, text in manifests.items()
        if path.endswith((".yaml", ".yml"))
        for doc in yaml.safe_load_all(text)
        if doc
    ]


@functools.cache
def _release(service: str, lane: str, variant: str) -> tuple[Obj, ...]:
    values = release_values(service, lane, variant)
    return tuple(objects(render_values(release_name(service, lane), values)))


def release(service: str, lane: str, variant: str = "default") -> list[Obj]:
    """The objects of one release (rendered once per test session)."""
    return list(_release(service, lane, variant))


def matrix() -> Iterator[tuple[str, str, str]]:
    for service in SERVICES:
        for lane in LANES:
            for variant in VARIANTS:
                yield service, lane, variant


def one(objs: list[Obj], kind: str) -> Obj:
    found = [o for o in objs if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def kinds(objs: list[Obj]) -> set[str]:
    return {o["kind"] for o in objs}
