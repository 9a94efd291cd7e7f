"""A limit set to a value that switches its safeguard off stops start-up, naming the field."""

import pytest

from depthflow.common.config import ConfigError, load_config
from depthflow.risk.config import RiskConfig

# the servers are named explicitly, so only the limit under test can be wrong
URLS = {
    "DEPTHFLOW_NATS_URL": "nats://127.0.0.1:4222",
    "DEPTHFLOW_POSTGRES_URL": "postgresql://risk@127.0.0.1:5432/risk",
    "DEPTHFLOW_REDIS_URL": "redis://127.0.0.1:6379/0",
}


def load(**env: str) -> RiskConfig:
    return load_config(RiskConfig, "risk", environ={**URLS, **env})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("MAX_SIGNAL_AGE_S", "inf"),
        ("MAX_SIGNAL_AGE_S", "nan"),
        ("MAX_SIGNAL_AGE_S", "61"),
        ("MAX_DRAWDOWN_PCT", "1"),
        ("MAX_DRAWDOWN_PCT", "0"),
        ("DAILY_LOSS_PCT", "0.9"),
        ("MIN_CONFIDENCE", "0"),
        ("MAX_MARK_AGE_S", "inf"),
        ("QUOTE_BAND_PCT", "0.5"),
        ("MAX_ORDERS_PER_MINUTE", "100000"),
        ("MIN_NOTIONAL", "inf"),
        ("QTY_STEP", "0"),
        ("MAX_POSITION_PCT", "2"),
    ],
)
def test_a_limit_that_disables_a_safeguard_is_refused(field, value):
    with pytest.raises(ConfigError, match=f"risk.limits.{field.lower()}"):
        load(**{f"DEPTHFLOW_RISK_LIMITS__{field}": value})


@pytest.mark.parametrize("field", ["STORAGE_TIMEOUT_S", "STARTING_CASH"])
def test_infinite_storage_timeout_and_cash_are_refused(field):
    with pytest.raises(ConfigError, match=f"risk.{field.lower()}"):
        load(**{f"DEPTHFLOW_RISK_{field}": "inf"})


def test_the_defaults_and_the_e2e_settings_load():
    env = {
        "DEPTHFLOW_RISK_LIMITS__MIN_CONFIDENCE": "0.05",
        "DEPTHFLOW_RISK_LIMITS__MAX_SIGNAL_AGE_S": "60",
        "DEPTHFLOW_RISK_LIMITS__MAX_ORDERS_PER_MINUTE": "1000",
    }
    assert load(**env).limits.max_signal_age_s == 60
    assert load().limits == RiskConfig().limits
