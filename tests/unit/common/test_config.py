"""A bad configuration value stops start-up with a message naming the field, its source and the
reason, and nothing else: no other value, no secret."""

import msgspec
import pytest

from depthflow.common.config import ConfigError, PositiveFloat, RuntimeConfig, load_config

NATS = {"DEPTHFLOW_NATS_URL": "nats://127.0.0.1:1"}


class Limits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_position_pct: PositiveFloat = 0.1


class SvcConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    runtime: RuntimeConfig = RuntimeConfig()
    bucket_size: PositiveFloat = 1.0
    limits: Limits = Limits()


def test_defaults_load_with_only_the_needed_url():
    cfg = load_config(SvcConfig, "svc", NATS)
    assert cfg.bucket_size == 1.0
    assert cfg.runtime.symbols == ["BTCFDUSD", "ETHFDUSD"]


def test_environment_overrides_shared_and_service_fields():
    env = {
        "DEPTHFLOW_NATS_URL": "nats://h:1",
        "DEPTHFLOW_SYMBOLS": "AAA,BBB",
        "DEPTHFLOW_SVC_BUCKET_SIZE": "0.5",
        "DEPTHFLOW_SVC_LIMITS__MAX_POSITION_PCT": "0.2",
        "DEPTHFLOW_SVC_RUNTIME__HTTP_PORT": "9000",
    }
    cfg = load_config(SvcConfig, "svc", env)
    assert cfg.runtime.nats_url == "nats://h:1"
    assert cfg.runtime.symbols == ["AAA", "BBB"]
    assert cfg.bucket_size == 0.5
    assert cfg.limits.max_position_pct == 0.2
    assert cfg.runtime.http_port == 9000


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"DEPTHFLOW_SVC_BUCKET_SIZE": "abc"}, ["svc.bucket_size", "'abc'", "DEPTHFLOW_SVC_BUCKET_SIZE"]),
        ({"DEPTHFLOW_SVC_BUCKET_SIZE": "-1"}, ["svc.bucket_size", "> 0"]),
        (
            {"DEPTHFLOW_SVC_LIMITS__MAX_POSITION_PCT": "lots"},
            ["svc.limits.max_position_pct", "DEPTHFLOW_SVC_LIMITS__MAX_POSITION_PCT"],
        ),
        ({"DEPTHFLOW_HTTP_PORT": "70000"}, ["svc.runtime.http_port", "DEPTHFLOW_HTTP_PORT"]),
        ({"DEPTHFLOW_SYMBOLS": "BTC.USDT"}, ["svc.runtime.symbols[0]"]),
        ({"DEPTHFLOW_SVC_BUKET_SIZE": "1"}, ["unknown setting DEPTHFLOW_SVC_BUKET_SIZE"]),
    ],
)
def test_bad_value_names_the_field(env, names):
    with pytest.raises(ConfigError) as err:
        load_config(SvcConfig, "svc", {**NATS, **env})
    for name in names:
        assert name in str(err.value)


def test_yaml_file_is_read_and_its_errors_name_the_field(tmp_path):
    path = tmp_path / "depthflow.yaml"
    path.write_text("svc:\n  bucket_size: 2.0\n  limits:\n    max_position_pct: 0.3\n")
    assert load_config(SvcConfig, "svc", NATS, yaml_path=path).limits.max_position_pct == 0.3
    path.write_text("svc:\n  limits:\n    max_position_pct: nope\n")
    expected = r"svc\.limits\.max_position_pct = 'nope' \(from .*depthflow\.yaml, section svc\)"
    with pytest.raises(ConfigError, match=expected):
        load_config(SvcConfig, "svc", {**NATS, "DEPTHFLOW_CONFIG": str(path)})
    path.write_text("svc:\n  limitz: {}\n")
    with pytest.raises(ConfigError, match="limitz"):
        load_config(SvcConfig, "svc", NATS, yaml_path=path)


def test_one_file_holds_every_service_section(tmp_path):
    """The same file goes to all five services: each reads runtime and its own section."""
    path = tmp_path / "depthflow.yaml"
    path.write_text(
        "runtime:\n  symbols: [AAA]\n  nats_url: nats://127.0.0.1:9\n  http_port: 8000\n"
        "svc:\n  bucket_size: 2.0\n  runtime:\n    http_port: 9000\n"
        "risk:\n  limits:\n    max_drawdown_pct: 0.2\n  not_a_svc_field: 1\n"
        "aggregator:\n  bucket_size: nonsense-for-svc\n"
    )
    cfg = load_config(SvcConfig, "svc", {}, yaml_path=path)
    assert cfg.bucket_size == 2.0
    assert cfg.runtime.symbols == ["AAA"]
    assert cfg.runtime.nats_url == "nats://127.0.0.1:9"
    assert cfg.runtime.http_port == 9000  # the service's own runtime overrides the shared one
    env = {"DEPTHFLOW_SYMBOLS": "BBB", "DEPTHFLOW_SVC_BUCKET_SIZE": "3"}
    cfg = load_config(SvcConfig, "svc", env, yaml_path=path)
    assert (cfg.runtime.symbols, cfg.bucket_size) == (["BBB"], 3.0)  # the environment wins


def test_an_unknown_section_is_an_error(tmp_path):
    path = tmp_path / "depthflow.yaml"
    path.write_text("runtime: {}\nai_fusion:\n  weights: {}\n")
    with pytest.raises(ConfigError, match=r"unknown section 'ai_fusion'.*did you mean ai-fusion"):
        load_config(SvcConfig, "svc", NATS, yaml_path=path)


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("DEPTHFLOW_SYMBOL", "did you mean DEPTHFLOW_SYMBOLS"),
        ("DEPTHFLOW_LIMITS__MAX_POSITION_PCT", "did you mean DEPTHFLOW_SVC_LIMITS__MAX_POSITION_PCT"),
        ("DEPTHFLOW_NOSUCHTHING", "DEPTHFLOW_CONFIG"),
    ],
)
def test_an_unknown_shared_variable_is_an_error(name, hint):
    with pytest.raises(ConfigError, match=f"unknown variable {name}") as err:
        load_config(SvcConfig, "svc", {**NATS, name: "x"})
    assert hint in str(err.value)


def test_other_services_variables_and_documented_extras_are_ignored():
    env = {**NATS, "DEPTHFLOW_RISK_LIMITS__ANYTHING": "1", "DEPTHFLOW_AI_FUSION_X": "y",
           "DEPTHFLOW_STATE_DIR": "/s", "DEPTHFLOW_SLOW": "1", "DEPTHFLOW_TEST_SERVERS": "embedded"}
    assert load_config(SvcConfig, "svc", env).bucket_size == 1.0


@pytest.mark.parametrize(
    ("needs", "missing"),
    [(("nats",), "DEPTHFLOW_NATS_URL"), (("nats", "postgres", "redis"), "DEPTHFLOW_POSTGRES_URL")],
)
def test_a_needed_server_without_url_refuses_to_start(needs, missing):
    with pytest.raises(ConfigError, match=f"{missing} is not set"):
        load_config(SvcConfig, "svc", NATS if missing != "DEPTHFLOW_NATS_URL" else {}, needs=needs)
    full = {**NATS, "DEPTHFLOW_POSTGRES_URL": "postgresql://u:p@h/d", "DEPTHFLOW_REDIS_URL": "redis://h/0"}
    assert load_config(SvcConfig, "svc", full, needs=needs).runtime.nats_url == NATS["DEPTHFLOW_NATS_URL"]


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"DEPTHFLOW_ACK_WAIT_S": "inf"}, "svc.runtime.ack_wait_s"),
        ({"DEPTHFLOW_MAX_DELIVER": "1000000"}, "svc.runtime.max_deliver"),
        ({"DEPTHFLOW_MAX_ACK_PENDING": "100000000"}, "svc.runtime.max_ack_pending"),
        ({"DEPTHFLOW_SVC_BUCKET_SIZE": "inf"}, "svc.bucket_size"),
        ({"DEPTHFLOW_SVC_BUCKET_SIZE": "nan"}, "svc.bucket_size"),
    ],
)
def test_values_that_disable_a_safeguard_are_refused(env, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config(SvcConfig, "svc", {**NATS, **env})


SECRET = "s3cr3t-Pa55w0rd"


class WithSecret(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    runtime: RuntimeConfig = RuntimeConfig()
    api_key: PositiveFloat = 1.0


@pytest.mark.parametrize(
    ("env", "yaml_text"),
    [
        # the offending value is a URL with a password
        ({"DEPTHFLOW_NATS_URL": f"nats://u:{SECRET}@h:1", "DEPTHFLOW_HTTP_PORT": "-1"}, None),
        ({"DEPTHFLOW_NATS_URL": f"nats://u:{SECRET}@h:1"}, "svc:\n  runtime:\n    http_port: x\n"),
        # a section-level error (an unknown field) must not print the section's values
        ({}, f"runtime:\n  nats_url: nats://u:{SECRET}@h:1\n  no_such_field: 1\n"),
        ({}, f"runtime:\n  nats_url: nats://u:{SECRET}@h:1\nsvc:\n  unknown: 1\n"),
        # the offending field is itself a secret
        ({**NATS, "DEPTHFLOW_SVC_API_KEY": SECRET}, None),
        # a list setting that does not parse
        ({**NATS, "DEPTHFLOW_SYMBOLS": f"[{SECRET}"}, None),
        ({**NATS, "DEPTHFLOW_SYMBOLS": f"nats://u:{SECRET}@h:1"}, None),
    ],
)
def test_errors_never_print_a_secret_or_another_value(tmp_path, env, yaml_text):
    path = None
    if yaml_text is not None:
        path = tmp_path / "depthflow.yaml"
        path.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_config(WithSecret, "svc", env, yaml_path=path)
    text = str(err.value)
    assert SECRET not in text
    assert "invalid config" in text
    assert "BTCFDUSD" not in text  # no default value, i.e. no dump of the config
    assert "(from defaults)" not in text


def test_the_services_own_variable_wins_over_the_shared_one():
    """DEPTHFLOW_SVC_RUNTIME__HTTP_PORT is this service's; DEPTHFLOW_HTTP_PORT every service's."""
    env = {**NATS, "DEPTHFLOW_HTTP_PORT": "8000", "DEPTHFLOW_SVC_RUNTIME__HTTP_PORT": "9000"}
    assert load_config(SvcConfig, "svc", env).runtime.http_port == 9000
    assert load_config(SvcConfig, "svc", {**NATS, "DEPTHFLOW_HTTP_PORT": "8000"}).runtime.http_port == 8000


def test_a_shared_variable_wins_over_the_files_own_section(tmp_path):
    """Precedence is by source before scope: the environment beats the file at any level."""
    path = tmp_path / "depthflow.yaml"
    path.write_text("svc:\n  runtime:\n    http_port: 9000\n")
    cfg = load_config(SvcConfig, "svc", {**NATS, "DEPTHFLOW_HTTP_PORT": "8000"}, yaml_path=path)
    assert cfg.runtime.http_port == 8000


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("- svc\n- runtime\n", "depthflow.yaml must be a mapping"),
        ("just words\n", "depthflow.yaml must be a mapping"),
        ("svc: 3\n", "section svc of"),
        ("runtime: [a, b]\n", "section runtime of"),
        ("svc:\n  runtime: off\n", "svc.runtime in"),
    ],
)
def test_a_file_or_section_that_is_not_a_mapping_is_refused(tmp_path, text, what):
    path = tmp_path / "depthflow.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="must be a mapping") as err:
        load_config(SvcConfig, "svc", NATS, yaml_path=path)
    assert what in str(err.value)
