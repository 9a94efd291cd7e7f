"""skaffold.yaml: valid against the vendored v4beta14 schema, one module per service and per
canary plus the platform, each deploying the chart with the same values files as the README."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.chart import CHART, LANES, ROOT, SERVICES, release_name, value_files

SKAFFOLD = ROOT / "skaffold.yaml"
SCHEMA = ROOT / "docs" / "schemas" / "skaffold" / "v4beta14.json"


def modules(text: str | None = None) -> dict[str, dict[str, Any]]:
    docs = list(yaml.safe_load_all(text if text is not None else SKAFFOLD.read_text()))
    return {d["metadata"]["name"]: d for d in docs}


def schema_errors(text: str) -> list[str]:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    return [
        f"{name}: {error.message}"
        for name, doc in modules(text).items()
        for error in validator.iter_errors(doc)
    ]


def test_every_module_validates_against_the_vendored_schema() -> None:
    assert schema_errors(SKAFFOLD.read_text()) == []
    assert {d["apiVersion"] for d in modules().values()} == {"skaffold/v4beta14"}


def test_the_schema_refuses_a_misspelt_field() -> None:
    """The vendored schema is strict: a typo in a release is an error, not ignored."""
    broken = SKAFFOLD.read_text().replace("valuesFiles:", "valueFiles:", 1)
    assert schema_errors(broken)


@pytest.mark.parametrize("lane", LANES)
@pytest.mark.parametrize("service", SERVICES)
def test_a_module_per_service_and_canary_deploys_the_chart(service: str, lane: str) -> None:
    name = release_name(service, lane)
    module = modules()[name]
    assert module["requires"] == [{"configs": ["platform"]}]
    (artifact,) = module["build"]["artifacts"]
    assert artifact["context"] == "."
    assert artifact["docker"] == {"dockerfile": "Dockerfile", "buildArgs": {"SERVICE": service}}
    (rel,) = module["deploy"]["helm"]["releases"]
    assert rel["name"] == name
    assert ROOT / rel["chartPath"] == CHART
    assert [ROOT / f for f in rel["valuesFiles"]] == value_files(service, lane)
    var = artifact["image"].replace("-", "_")
    assert rel["setValueTemplates"]["image.repository"] == f"{{{{.IMAGE_REPO_{var}}}}}"


def test_platform_references_the_servers_charts_and_the_secret_exists() -> None:
    platform = modules()["platform"]
    charts = {r["name"]: r.get("remoteChart", "") for r in platform["deploy"]["helm"]["releases"]}
    assert set(charts) == {"nats", "postgresql", "redis"}
    assert all(charts.values())  # their official charts, never a chart of ours
    for manifest in platform["manifests"]["rawYaml"]:
        secret = yaml.safe_load((ROOT / manifest).read_text())
        assert set(secret["stringData"]) == {"nats-url", "postgres-url", "redis-url"}
    assert not set(modules()) - {"platform"} - {release_name(s, lane) for s in SERVICES for lane in LANES}


def test_skaffold_names_only_existing_files() -> None:
    for module in modules().values():
        for rel in module["deploy"]["helm"]["releases"]:
            for f in [rel.get("chartPath"), *rel.get("valuesFiles", [])]:
                assert f is None or Path(ROOT / f).exists(), f
