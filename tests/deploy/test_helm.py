"""The service chart, checked offline with the real engines: Helm's (template, schema, lint)
and the Kubernetes API schemas; its config is checked by the services' own loader.

Every service x lane x value variant is rendered as ``helm template`` would (values composed
like the README's ``-f`` commands). No cluster, no ``helm`` binary: ``helm-python-sdk`` embeds
Helm's Go SDK and ``kubernetes-validate`` ships the API schemas.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate import utils as k8s_utils
from referencing import Registry, Resource

from depthflow.aggregator.config import AggregatorConfig
from depthflow.ai_fusion.config import FusionConfig
from depthflow.collector.config import CollectorConfig
from depthflow.common.bootstrap import BootstrapSettings
from depthflow.common.config import load_config
from depthflow.common.telemetry import Metrics
from depthflow.peaks.config import PeaksConfig
from depthflow.risk.config import RiskConfig
from tests.deploy.chart import (
    CHART,
    ROOT,
    Obj,
    kinds,
    matrix,
    one,
    release,
    release_name,
    release_values,
    render_values,
)

#: The oldest Kubernetes the chart claims (Chart.yaml kubeVersion is >=1.25): every object
#: must be valid there and in the newest schema the package ships.
KUBE_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
#: Custom resources: no API schema ships for them; checked by their own assertions below.
CUSTOM = {"PodMonitor", "PrometheusRule"}
#: Each service's config class and the servers its ``__main__`` says it needs.
LOADERS: dict[str, tuple[type[Any], tuple[str, ...]]] = {
    "collector": (CollectorConfig, ("nats",)),
    "aggregator": (AggregatorConfig, ("nats", "redis")),
    "peaks": (PeaksConfig, ("nats", "redis")),
    "ai-fusion": (FusionConfig, ("nats",)),
    "risk": (RiskConfig, ("nats", "postgres", "redis")),
}
#: Where the image keeps numba's warmed cache (the Dockerfile's NUMBA_CACHE_DIR).
NUMBA_CACHE_DIR = re.search(r"NUMBA_CACHE_DIR=(\S+)", (ROOT / "Dockerfile").read_text()).group(1)
CASES = [pytest.param(*case, id="-".join(case)) for case in matrix()]


@functools.cache
def _kube_validator(version: str, kind: str, api_version: str) -> jsonschema.Draft202012Validator:
    """What ``kubernetes_validate.validate(obj, version, strict=True)`` checks, built once per
    (version, kind): the library re-reads the version's definitions (megabytes of JSON) on every
    call, which made these checks most of the module's time. Same files, same draft."""
    schema_version = [
        v for v in k8s_utils.all_versions() if k8s_utils.major_minor(v) <= k8s_utils.major_minor(version)
    ][-1]
    folder = f"kubernetes-json-schema/v{schema_version}-local-strict"
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = k8s_utils.schema_contents(f"{folder}/{kind.lower()}-{api}.json", version)
    except FileNotFoundError:
        pytest.fail(f"Kubernetes {version} has no {kind} in {api_version} (removed or never existed)")
    definitions = k8s_utils.schema_contents(f"{folder}/_definitions.json", version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _container(objs: list[Obj], kind: str) -> Obj:
    (container,) = one(objs, kind)["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize(("service", "lane", "variant"), CASES)
def test_every_rendered_object_is_valid_kubernetes(service: str, lane: str, variant: str) -> None:
    objs = release(service, lane, variant)
    expected = {"Deployment", "ConfigMap"} | ({"ServiceAccount"} if variant != "hardened" else set())
    assert expected <= kinds(objs)
    for obj in objs:
        if obj["kind"] in CUSTOM:
            continue
        for version in KUBE_VERSIONS:
            errors = [
                f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in _kube_validator(version, obj["kind"], obj["apiVersion"]).iter_errors(obj)
            ]
            assert not errors, f"{obj['kind']} {obj['metadata']['name']} on Kubernetes {version}: {errors}"


def test_the_cached_kubernetes_check_is_the_librarys() -> None:
    """The cached validator refuses what ``kubernetes_validate`` refuses and passes what it passes."""
    deployment = one(release("risk", "stable"), "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080"
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(deployment, version, strict=True)
        assert not list(_kube_validator(version, "Deployment", "apps/v1").iter_errors(deployment))
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, version, strict=True)
        assert list(_kube_validator(version, "Deployment", "apps/v1").iter_errors(broken))


@pytest.mark.parametrize(("service", "lane", "variant"), CASES)
def test_deployment_carries_probes_lane_security_and_config_checksum(
    service: str, lane: str, variant: str
) -> None:
    objs = release(service, lane, variant)
    deployment = one(objs, "Deployment")
    pod = deployment["spec"]["template"]
    container = _container(objs, "Deployment")
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    # numba needs a writable cache dir (else it refuses at import): the image's, or a copy
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    if container["securityContext"]["readOnlyRootFilesystem"]:
        assert NUMBA_CACHE_DIR in mounts, "read-only root without a writable numba cache"
        (init,) = pod["spec"]["initContainers"]
        assert init["command"][-2:] == [f"{NUMBA_CACHE_DIR}/.", f"{init['volumeMounts'][0]['mountPath']}/"]
        assert init["volumeMounts"][0]["name"] == mounts[NUMBA_CACHE_DIR]["name"]
    # the lane: label on every object, DEPTHFLOW_LANE in the process, own selector per release
    assert all(o["metadata"]["labels"]["depthflow.io/lane"] == lane for o in objs)
    env = {e["name"]: e for e in container["env"]}
    assert env["DEPTHFLOW_LANE"]["value"] == lane
    assert env["DEPTHFLOW_REPLICA"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/instance"] == release_name(service, lane)
    # a changed config rolls the pods: the annotation is the ConfigMap's own hash
    configmap = render_values(release_name(service, lane), release_values(service, lane, variant))
    text = configmap["depthflow-service/templates/configmap.yaml"]
    assert pod["metadata"]["annotations"]["checksum/config"] == hashlib.sha256(text.encode()).hexdigest()
    # server URLs and keys come from Secrets only, never a literal value in the chart
    for name, entry in env.items():
        if name.endswith(("_URL", "_KEY", "_SECRET")) and name != "DEPTHFLOW_CONFIG":
            assert "secretKeyRef" in entry.get("valueFrom", {}), name


@pytest.mark.parametrize(("service", "lane", "variant"), CASES)
def test_scaling_disruption_monitoring_and_hooks_follow_the_lane(
    service: str, lane: str, variant: str
) -> None:
    objs = release(service, lane, variant)
    values = release_values(service, lane, variant)
    found = kinds(objs)
    autoscaled = values.get("autoscaling", {}).get("enabled", False)
    replicas = values["autoscaling"]["minReplicas"] if autoscaled else values.get("replicaCount", 1)
    assert ("HorizontalPodAutoscaler" in found) == autoscaled
    assert ("PodDisruptionBudget" in found) == (replicas > 1 and lane == "stable")
    if lane == "canary":  # fixed replicas; stable owns the streams and migrations
        assert not autoscaled
        assert "Job" not in found
    else:
        job = one(objs, "Job")
        assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        job_labels = job["spec"]["template"]["metadata"]["labels"]
        selector = one(objs, "Deployment")["spec"]["selector"]["matchLabels"]
        assert not selector.items() <= job_labels.items(), "the Job's pods would count as the service's"
    if "PodMonitor" in found:
        monitor = one(objs, "PodMonitor")
        assert (
            monitor["spec"]["selector"]["matchLabels"]
            == one(objs, "Deployment")["spec"]["selector"]["matchLabels"]
        )
        ports = {p["name"] for p in _container(objs, "Deployment")["ports"]}
        assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= ports
    assert "NetworkPolicy" in found


def _exposed(service: str, lane: str) -> set[str]:
    """The sample names the service's /metrics can show (the runtime's Metrics)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    families = Metrics(service, lane, []).registry.collect()
    return {f.name + suffix for f in families for suffix in suffixes.get(f.type, ("",))}


@pytest.mark.parametrize(("service", "lane", "variant"), CASES)
def test_alert_rules_query_metrics_the_service_exposes_in_its_lane(
    service: str, lane: str, variant: str
) -> None:
    rules = [o for o in release(service, lane, variant) if o["kind"] == "PrometheusRule"]
    assert rules, "alerts are on by default"
    exposed = _exposed(service, lane)
    alerts = [rule for group in rules[0]["spec"]["groups"] for rule in group["rules"]]
    for alert in alerts:
        names = set(re.findall(r"depthflow_\w+", alert["expr"]))
        assert names, alert["alert"]
        assert names <= exposed, f"{alert['alert']} queries {sorted(names - exposed)}, not exposed"
        assert f'lane="{lane}"' in alert["expr"]
    assert ("DepthflowCanaryWorseThanStable" in {a["alert"] for a in alerts}) == (lane == "canary")


def _env(container: Obj, config_path: Path) -> dict[str, str]:
    """The container's environment as the pod would see it; Secret values are stand-ins."""
    env = {}
    for entry in container.get("env", []):
        name = entry["name"]
        if "value" in entry:
            env[name] = entry["value"]
        elif "secretKeyRef" in entry["valueFrom"]:
            env[name] = f"nats://user:secret@{name.lower()}.example:1"
        else:
            env[name] = "pod-7d9c5-x2x4q"
    if "DEPTHFLOW_CONFIG" in env:
        env["DEPTHFLOW_CONFIG"] = str(config_path)
    return env


@pytest.mark.parametrize(("service", "lane", "variant"), CASES)
def test_rendered_config_and_environment_are_accepted_by_the_service(
    service: str, lane: str, variant: str, tmp_path: Path
) -> None:
    """The loader the service starts with refuses unknown sections, keys and DEPTHFLOW_*
    variables, and a missing server URL: the ConfigMap and the env must pass it."""
    objs = release(service, lane, variant)
    config_path = tmp_path / "depthflow.yaml"
    config_path.write_text(one(objs, "ConfigMap")["data"]["depthflow.yaml"])
    cls, needs = LOADERS[service]
    cfg = load_config(cls, service, _env(_container(objs, "Deployment"), config_path), needs=needs)
    assert cfg.runtime.lane == lane
    assert cfg.runtime.http_host == "0.0.0.0"
    if lane == "stable":
        job = _container(objs, "Job")
        job_needs = ("nats", "postgres") if any("--migrations" in a for a in job["args"]) else ("nats",)
        settings = load_config(BootstrapSettings, service, _env(job, config_path), needs=job_needs)
        assert settings.runtime.symbols == cfg.runtime.symbols
        assert settings.runtime.prefix == cfg.runtime.prefix


@pytest.mark.parametrize(("service", "lane", "variant"), CASES)
def test_helm_lint_is_clean(service: str, lane: str, variant: str) -> None:
    values = release_values(service, lane, variant)
    report = helm.lint(CHART, values, strict=True, namespace="depthflow")
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # warnings and errors
    assert not problems, report
    assert not report["errors"], report


BAD_VALUES = [
    pytest.param({"replicas": 3}, "at '': additional properties 'replicas' not allowed", id="unknown-key"),
    pytest.param({"replicaCount": "three"}, "at '/replicaCount': got string, want integer", id="wrong-type"),
    pytest.param(
        {"service": {"lane": "blue"}},
        "at '/service/lane': value must be one of 'stable', 'canary'",
        id="unknown-lane",
    ),
    pytest.param(
        {"autoscaling": {"enabeld": True}},
        "at '/autoscaling': additional properties 'enabeld' not allowed",
        id="misspelt-nested-key",
    ),
    pytest.param(
        {"config": {"riks": {}}},
        "at '/config': additional properties 'riks' not allowed",
        id="unknown-config-section",
    ),
    pytest.param({"env": {"A": 1}}, "at '/env/A': got number, want string", id="env-not-a-string"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_VALUES)
def test_bad_values_are_refused_by_the_schema_with_a_readable_message(bad: Obj, message: str) -> None:
    values = release_values("risk", "stable", extra=bad)
    with pytest.raises(helm.HelmValuesError) as refused:
        render_values("risk", values)
    assert message in str(refused.value)
    assert "depthflow-service" in str(refused.value)  # names the chart whose schema refused it
