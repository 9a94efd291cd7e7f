"""Service configuration: one msgspec Struct per service, from an optional YAML file and the
environment, validated before anything starts.

Why strict: a trading system that starts with a mistyped limit is worse than one that does not
start. Every error names the field, where its value came from and why it is refused, e.g.::

    invalid config: risk.limits.max_position_pct = 'lots' (from DEPTHFLOW_RISK_LIMITS__MAX_POSITION_PCT):
    Expected `float`, got `str`

and prints no other value: never the whole config, and never a secret, even the offending one
(a URL's password and any field named like password/secret/key/token are masked).

Sources, later wins:
1. the YAML file named by ``DEPTHFLOW_CONFIG`` (the Helm ConfigMap): ONE file for the whole
   system, with a ``runtime:`` section shared by every service and one section per service
   (``aggregator:``, ``risk:``, ...). Each service reads ``runtime`` and its own section (whose
   own ``runtime:`` overrides the shared one) and ignores the others' sections, so the same file
   goes to all five; an unknown top-level section is an error;
2. ``DEPTHFLOW_<FIELD>`` for fields of the shared ``runtime`` section (URLs, prefix, ...);
3. ``DEPTHFLOW_<SERVICE>_<FIELD>``, nested sections joined by ``__``, for everything else
   (``DEPTHFLOW_RISK_RUNTIME__HTTP_PORT`` too).

Any ``DEPTHFLOW_*`` variable that is none of these (nor one of :data:`EXTRA_VARIABLES`) is an
error, so a typo (``DEPTHFLOW_SYMBOL``) never silently leaves a default in force.

Server URLs have no default: a service names the servers it needs (``needs=``) and refuses to
start without their URLs rather than guess a port (where it might find some other server).
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeGuard, TypeVar

import msgspec
import yaml

from depthflow.common.redact import MASK, is_secret_name, mask_url, mask_value

T = TypeVar("T", bound=msgspec.Struct)

# Every float setting is finite: an ``inf`` limit or timeout is a disabled safeguard.
_FINITE = sys.float_info.max
PositiveFloat = Annotated[float, msgspec.Meta(gt=0, le=_FINITE)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0, le=_FINITE)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Token = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]*$")]
Symbol = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]+$")]

#: The services whose sections a config file may hold and whose ``DEPTHFLOW_<SERVICE>_*``
#: variables are theirs (each service ignores the others').
SERVICES = ("collector", "aggregator", "peaks", "ai-fusion", "risk")

#: ``DEPTHFLOW_*`` variables that are not settings but are allowed in a service's environment:
#: the config file, the ``depthflow`` command's state folder, the test suite's switches.
EXTRA_VARIABLES = frozenset(
    {"DEPTHFLOW_CONFIG", "DEPTHFLOW_STATE_DIR", "DEPTHFLOW_SLOW", "DEPTHFLOW_TEST_SERVERS"}
)

#: The servers a service may need, by the short name ``needs=`` takes, and their setting.
SERVER_SETTINGS = {"nats": "nats_url", "postgres": "postgres_url", "redis": "redis_url"}


class ConfigError(Exception):
    """Configuration that must stop start-up; the message names the field."""


class RuntimeConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What every service needs to join the bus and be operated."""

    # no default: a guessed port may hold some other server (this machine's system Postgres)
    nats_url: str = ""
    postgres_url: str = ""
    redis_url: str = ""
    prefix: Token = ""
    venue: Token = "binance"
    symbols: list[Symbol] = msgspec.field(default_factory=lambda: ["BTCFDUSD", "ETHFDUSD"])
    lane: Token = "stable"
    # which replica of its lane this process is (``DEPTHFLOW_REPLICA``): replicas of one lane
    # split its symbols (routing/replicas); each needs its own id, unique within the lane
    replica: Token = "0"
    # replicas' presence: a heartbeat each replica_heartbeat_s; none for replica_dead_after_s
    # and the replica is dead (its symbols rebalanced to the others from its checkpoint)
    replica_heartbeat_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 1.0
    replica_dead_after_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 5.0
    http_host: str = "127.0.0.1"
    http_port: Port = 0
    # bounded: an unbounded backlog, a never-redelivered message or endless retries of a
    # poison message each disable a safeguard
    max_ack_pending: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 256
    fetch_batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 64
    ack_wait_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0
    max_deliver: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    # an input stamped further ahead of this clock than this is a dead letter, never state
    max_future_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 10.0
    # start-up gives up on a server that does not answer within this bound, naming its setting
    startup_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 15.0
    # disk for all streams together; bootstrap sizes each stream's retention within it
    stream_budget_gib: Annotated[float, msgspec.Meta(ge=0.1, le=1_000_000)] = 20.0
    otel_endpoint: str = ""
    log_level: Annotated[str, msgspec.Meta(pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")] = "INFO"



_ENV_PREFIX = "DEPTHFLOW_"
_PATH_IN_ERROR = re.compile(r"at `\$((?:\.\w+|\[\d+\])*)`")

Path_ = tuple[str, ...]


def _env_name(service: str) -> str:
    return f"{_ENV_PREFIX}{service.upper().replace('-', '_')}_"


def _is_struct(t: Any) -> TypeGuard[msgspec.inspect.StructType]:
    return isinstance(t, msgspec.inspect.StructType)


def _struct_info(cls: type) -> msgspec.inspect.StructType:
    info = msgspec.inspect.type_info(cls)
    if not isinstance(info, msgspec.inspect.StructType):
        raise TypeError(f"{cls!r} is no msgspec.Struct")
    return info


def _env_names(cls: type, env_prefix: str) -> Iterator[str]:
    """Every variable name that sets a leaf field of ``cls`` (for errors' suggestions)."""
    for f in _struct_info(cls).fields:
        if _is_struct(f.type):
            yield from _env_names(f.type.cls, f"{env_prefix}{f.name.upper()}__")
        else:
            yield f"{env_prefix}{f.name.upper()}"


_RUNTIME_VARIABLES = frozenset(_env_names(RuntimeConfig, _ENV_PREFIX))


def _did_you_mean(name: str, candidates: Collection[str]) -> str:
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def _env_value(name: str, raw: str, t: Any) -> Any:
    # Lists and dicts come as YAML/JSON text; scalars stay strings and msgspec converts them.
    if isinstance(t, msgspec.inspect.ListType | msgspec.inspect.DictType):
        try:
            return yaml.safe_load(raw) if raw.strip().startswith(("[", "{")) else raw.split(",")
        except yaml.YAMLError as exc:
            # the YAML error quotes the text, which may be a secret: name the variable only
            raise ConfigError(f"invalid config: {name} is not a YAML/JSON list or mapping "
                              f"({type(exc).__name__})") from None
    return raw


def _merge_env(
    data: dict[str, Any],
    cls: type,
    env: Mapping[str, str],
    env_prefix: str,
    path: Path_,
    sources: dict[Path_, str],
) -> set[str]:
    used: set[str] = set()
    info = _struct_info(cls)
    for f in info.fields:
        fpath = (*path, f.name)
        if _is_struct(f.type):
            sub = data.setdefault(f.name, {})
            if not isinstance(sub, dict):
                raise ConfigError(f"invalid config: {'.'.join(fpath)} must be a mapping "
                                  f"(from {sources.get(fpath, 'the config file')})")
            used |= _merge_env(sub, f.type.cls, env, f"{env_prefix}{f.name.upper()}__", fpath, sources)
            continue
        name = f"{env_prefix}{f.name.upper()}"
        if name in env:
            data[f.name] = _env_value(name, env[name], f.type)
            sources[fpath] = name
            used.add(name)
    return used


def _mark_sources(data: Any, path: Path_, source: str, sources: dict[Path_, str]) -> None:
    """Record ``source`` for ``path`` and everything under it (the file's values)."""
    sources[path] = source
    if isinstance(data, dict):
        for key, value in data.items():
            _mark_sources(value, (*path, str(key)), source, sources)


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"invalid config: {what} must be a mapping")
    return dict(value)


def _read_file(
    yaml_path: str | Path, service: str, sources: dict[Path_, str]
) -> dict[str, Any]:
    """The service's view of the system's config file: its section, ``runtime`` under it."""
    try:
        loaded = yaml.safe_load(Path(yaml_path).read_text())
    except OSError as exc:
        raise ConfigError(f"invalid config: cannot read {yaml_path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        # the parser's message quotes lines of the file, which may hold secrets: position only
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"invalid config: {yaml_path} is not valid YAML{where}") from None
    loaded = _mapping(loaded, f"{yaml_path}")
    sections = ("runtime", *dict.fromkeys((*SERVICES, service)))
    for key in loaded:
        if key not in sections:
            raise ConfigError(
                f"invalid config: unknown section {key!r} in {yaml_path}"
                f"{_did_you_mean(str(key), sections)}; sections are {', '.join(sections)}"
            )
    own = _mapping(loaded.get(service), f"section {service} of {yaml_path}")
    shared = _mapping(loaded.get("runtime"), f"section runtime of {yaml_path}")
    own_runtime = _mapping(own.get("runtime"), f"{service}.runtime in {yaml_path}")
    _mark_sources(shared, ("runtime",), f"{yaml_path}, section runtime", sources)
    _mark_sources(own, (), f"{yaml_path}, section {service}", sources)
    return {**own, "runtime": {**shared, **own_runtime}}


def _check_variables(env: Mapping[str, str], service: str, cls: type, used: set[str]) -> None:
    """Refuse any ``DEPTHFLOW_*`` variable that sets nothing: a typo must not pass silently."""
    own = _env_name(service)
    others = tuple(_env_name(s) for s in SERVICES if _env_name(s) != own)
    own_names = set(_env_names(cls, own))
    for name in sorted(env):
        if not name.startswith(_ENV_PREFIX) or name in used or name in EXTRA_VARIABLES:
            continue
        if name in _RUNTIME_VARIABLES or name.startswith(others):
            continue
        if name.startswith(own):
            raise ConfigError(
                f"invalid config: unknown setting {name} for {service}"
                f"{_did_you_mean(name, own_names)}; its settings are {sorted(own_names)}"
            )
        hint = _did_you_mean(name, _RUNTIME_VARIABLES | EXTRA_VARIABLES | own_names)
        if not hint and f"{own}{name[len(_ENV_PREFIX):]}" in own_names:
            hint = f" (did you mean {own}{name[len(_ENV_PREFIX):]}?)"
        raise ConfigError(
            f"invalid config: unknown variable {name}{hint}: it is no shared setting, no "
            f"service's (DEPTHFLOW_<SERVICE>_..., services {', '.join(SERVICES)}) and none of "
            f"{', '.join(sorted(EXTRA_VARIABLES))}"
        )


def _require_servers(cfg: Any, service: str, needs: Collection[str]) -> None:
    for kind in needs:
        field = SERVER_SETTINGS[kind]
        if not getattr(cfg.runtime, field):
            raise ConfigError(
                f"invalid config: {_ENV_PREFIX}{field.upper()} is not set: {service} needs a "
                f"{kind} server and guesses no default port (set the variable, or runtime."
                f"{field} in the file named by {_ENV_PREFIX}CONFIG)"
            )


def load_config(
    cls: type[T],
    service: str,
    environ: Mapping[str, str] | None = None,
    yaml_path: str | Path | None = None,
    needs: Collection[str] = ("nats",),
) -> T:
    """Return ``cls`` filled from YAML and the environment, or raise :class:`ConfigError`.

    ``cls`` must have a ``runtime: RuntimeConfig`` field; ``service`` is the service's name
    (``ai-fusion`` reads section ``ai-fusion`` and ``DEPTHFLOW_AI_FUSION_*``). ``needs`` names
    the servers (keys of :data:`SERVER_SETTINGS`) the service connects to: each one's URL must
    be set. Every service is on the bus, hence the default.
    """
    unknown_needs = set(needs) - set(SERVER_SETTINGS)
    if unknown_needs:
        raise ValueError(f"needs {sorted(unknown_needs)}; known servers {sorted(SERVER_SETTINGS)}")
    env = dict(os.environ if environ is None else environ)
    yaml_path = yaml_path or env.get("DEPTHFLOW_CONFIG") or None
    sources: dict[Path_, str] = {}
    data = _read_file(yaml_path, service, sources) if yaml_path else {"runtime": {}}
    # shared runtime fields first (DEPTHFLOW_NATS_URL), then the service's own (override)
    used = _merge_env(data["runtime"], RuntimeConfig, env, _ENV_PREFIX, ("runtime",), sources)
    used |= _merge_env(data, cls, env, _env_name(service), (), sources)
    _check_variables(env, service, cls, used)
    try:
        cfg = msgspec.convert(data, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_describe(service, data, sources, str(exc))) from None
    _require_servers(cfg, service, needs)
    return cfg


def _describe(service: str, data: dict[str, Any], sources: dict[Path_, str], error: str) -> str:
    """``field = value (from SOURCE): reason`` for one msgspec error, printing only that value.

    A section (mapping or list) is never printed, only named; a secret value is masked.
    """
    m = _PATH_IN_ERROR.search(error)
    tokens = tuple(t for t in re.split(r"[.\[\]]", m.group(1)) if t) if m else ()
    value: Any = data
    for t in tokens:
        value = value[int(t)] if isinstance(value, list) and t.isdigit() and int(t) < len(value) else (
            value.get(t) if isinstance(value, dict) else None
        )
    field = service + "".join(f"[{t}]" if t.isdigit() else f".{t}" for t in tokens)
    where = next(
        (sources[tokens[:n]] for n in range(len(tokens), -1, -1) if tokens[:n] in sources),
        "defaults",
    )
    reason = mask_url(_PATH_IN_ERROR.sub("", error).rstrip(" -"))
    named = next((t for t in reversed(tokens) if not t.isdigit()), "")
    if isinstance(value, dict | list) or not tokens:
        return f"invalid config: {field} (from {where}): {reason}"
    if is_secret_name(named) and isinstance(value, str) and value:
        reason = reason.replace(value, MASK)  # e.g. an enum error quoting the value
    return f"invalid config: {field} = {mask_value(named, value)} (from {where}): {reason}"
