"""Service configuration: one msgspec Struct per service, from an optional YAML file and the
environment, validated before anything starts.

Why strict: a trading system that starts with a mistyped limit is worse than one that does not
start. Every error names the field, the value and where it came from, e.g.::

    invalid config: risk.limits.max_position_pct = 'lots' (from DEPTHFLOW_RISK_LIMITS__MAX_POSITION_PCT):
    Expected `float`, got `str`

Sources, later wins:
1. the YAML file named by ``DEPTHFLOW_CONFIG`` (the Helm ConfigMap), keyed like the Struct;
2. ``DEPTHFLOW_<FIELD>`` for fields of the shared ``runtime`` section (URLs, prefix, ...);
3. ``DEPTHFLOW_<SERVICE>_<FIELD>``, nested sections joined by ``__``, for everything else
   (``DEPTHFLOW_RISK_RUNTIME__HTTP_PORT`` too). An unknown ``DEPTHFLOW_<SERVICE>_*`` variable is an
   error, so a typo never silently leaves a default in force.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec
import yaml

T = TypeVar("T", bound=msgspec.Struct)

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Token = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]*$")]
Symbol = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]+$")]


class ConfigError(Exception):
    """Configuration that must stop start-up; the message names the field."""


class RuntimeConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What every service needs to join the bus and be operated."""

    nats_url: str = "nats://127.0.0.1:4222"
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    redis_url: str = "redis://127.0.0.1:6379/0"
    prefix: Token = ""
    venue: Token = "binance"
    symbols: list[Symbol] = msgspec.field(default_factory=lambda: ["BTCFDUSD", "ETHFDUSD"])
    lane: Token = "stable"
    http_host: str = "127.0.0.1"
    http_port: Port = 0
    max_ack_pending: PositiveInt = 256
    fetch_batch: PositiveInt = 64
    ack_wait_s: PositiveFloat = 30.0
    max_deliver: PositiveInt = 5
    # an input stamped further ahead of this clock than this is a dead letter, never state
    max_future_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 10.0
    otel_endpoint: str = ""
    log_level: Annotated[str, msgspec.Meta(pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")] = "INFO"


_ENV_PREFIX = "DEPTHFLOW_"
_PATH_IN_ERROR = re.compile(r"at `\$((?:\.\w+|\[\d+\])*)`")


def _struct_fields(cls: type) -> dict[str, Any]:
    info = msgspec.inspect.type_info(cls)
    return {f.name: f.type for f in info.fields}


def _is_struct(t: Any) -> bool:
    return isinstance(t, msgspec.inspect.StructType)


def _env_value(raw: str, t: Any) -> Any:
    # Lists and dicts come as YAML/JSON text; scalars stay strings and msgspec converts them.
    if isinstance(t, msgspec.inspect.ListType | msgspec.inspect.DictType):
        try:
            return yaml.safe_load(raw) if raw.strip().startswith(("[", "{")) else raw.split(",")
        except yaml.YAMLError as exc:
            raise ConfigError(f"invalid config: cannot parse {raw!r}: {exc}") from exc
    return raw


def _merge_env(
    data: dict[str, Any],
    cls: type,
    env: Mapping[str, str],
    env_prefix: str,
    path: tuple[str, ...],
    sources: dict[tuple[str, ...], str],
) -> set[str]:
    used: set[str] = set()
    info = msgspec.inspect.type_info(cls)
    for f in info.fields:
        fpath = (*path, f.name)
        if _is_struct(f.type):
            sub = data.setdefault(f.name, {})
            if not isinstance(sub, dict):
                raise ConfigError(f"invalid config: {'.'.join(fpath)} must be a mapping")
            used |= _merge_env(sub, f.type.cls, env, f"{env_prefix}{f.name.upper()}__", fpath, sources)
            continue
        name = f"{env_prefix}{f.name.upper()}"
        if name in env:
            data[f.name] = _env_value(env[name], f.type)
            sources[fpath] = name
            used.add(name)
    return used


def load_config(
    cls: type[T],
    service: str,
    environ: Mapping[str, str] | None = None,
    yaml_path: str | Path | None = None,
) -> T:
    """Return ``cls`` filled from YAML and the environment, or raise :class:`ConfigError`.

    ``cls`` must have a ``runtime: RuntimeConfig`` field; ``service`` is the service's name
    (``ai-fusion`` reads ``DEPTHFLOW_AI_FUSION_*``).
    """
    env = dict(os.environ if environ is None else environ)
    yaml_path = yaml_path or env.get("DEPTHFLOW_CONFIG") or None
    data: dict[str, Any] = {}
    sources: dict[tuple[str, ...], str] = {}
    if yaml_path:
        try:
            loaded = yaml.safe_load(Path(yaml_path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"invalid config: cannot read {yaml_path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"invalid config: {yaml_path} must hold a mapping")
        data = loaded
    svc = service.upper().replace("-", "_")
    # shared runtime fields first (DEPTHFLOW_NATS_URL), then the service's own (override)
    runtime = data.setdefault("runtime", {})
    if not isinstance(runtime, dict):
        raise ConfigError("invalid config: runtime must be a mapping")
    _merge_env(runtime, RuntimeConfig, env, _ENV_PREFIX, ("runtime",), sources)
    used = _merge_env(data, cls, env, f"{_ENV_PREFIX}{svc}_", (), sources)
    unknown = sorted(k for k in env if k.startswith(f"{_ENV_PREFIX}{svc}_") and k not in used)
    if unknown:
        raise ConfigError(
            f"invalid config: unknown setting {unknown[0]} for {service}; "
            f"fields are {sorted(_struct_fields(cls))}"
        )
    try:
        return msgspec.convert(data, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_describe(service, data, sources, str(exc), yaml_path)) from exc


def _describe(
    service: str,
    data: dict[str, Any],
    sources: dict[tuple[str, ...], str],
    error: str,
    yaml_path: str | Path | None,
) -> str:
    m = _PATH_IN_ERROR.search(error)
    tokens = tuple(t for t in re.split(r"[.\[\]]", m.group(1)) if t) if m else ()
    value: Any = data
    for t in tokens:
        value = value[int(t)] if isinstance(value, list) and t.isdigit() else (
            value.get(t) if isinstance(value, dict) else None
        )
    field = service + "".join(f"[{t}]" if t.isdigit() else f".{t}" for t in tokens)
    where = next(
        (sources[tokens[:n]] for n in range(len(tokens), 0, -1) if tokens[:n] in sources),
        str(yaml_path) if yaml_path else "defaults",
    )
    reason = _PATH_IN_ERROR.sub("", error).rstrip(" -")
    return f"invalid config: {field} = {value!r} (from {where}): {reason}"
