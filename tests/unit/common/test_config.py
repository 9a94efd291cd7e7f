"""A bad configuration value stops start-up with a message naming the field."""

import msgspec
import pytest

from depthflow.common.config import ConfigError, PositiveFloat, RuntimeConfig, load_config


class Limits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_position_pct: PositiveFloat = 0.1


class SvcConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    runtime: RuntimeConfig = RuntimeConfig()
    bucket_size: PositiveFloat = 1.0
    limits: Limits = Limits()


def test_defaults_load_with_empty_environment():
    cfg = load_config(SvcConfig, "svc", {})
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
        load_config(SvcConfig, "svc", env)
    for name in names:
        assert name in str(err.value)


def test_yaml_file_is_read_and_its_errors_name_the_field(tmp_path):
    path = tmp_path / "svc.yaml"
    path.write_text("bucket_size: 2.0\nlimits:\n  max_position_pct: 0.3\n")
    assert load_config(SvcConfig, "svc", {}, yaml_path=path).limits.max_position_pct == 0.3
    path.write_text("limits:\n  max_position_pct: nope\n")
    with pytest.raises(ConfigError, match=r"svc\.limits\.max_position_pct = 'nope'"):
        load_config(SvcConfig, "svc", {"DEPTHFLOW_CONFIG": str(path)})
    path.write_text("limitz: {}\n")
    with pytest.raises(ConfigError, match="limitz"):
        load_config(SvcConfig, "svc", {}, yaml_path=path)
