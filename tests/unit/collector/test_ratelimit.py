"""The weight budget never lets a request out early."""

from depthflow.collector.binance.ratelimit import ResyncPacer, WeightBudget, depth_weight


def test_depth_weights_follow_the_documented_table():
    assert [depth_weight(n) for n in (5, 100, 101, 500, 1000, 1001, 5000)] == [5, 5, 25, 25, 50, 250, 250]


def test_requests_wait_for_the_next_minute_when_the_budget_is_spent():
    b = WeightBudget(limit_per_minute=1000, safety=1.0)
    now = 600.0
    for _ in range(4):
        assert b.wait_s(250, now) == 0
        b.spend(250, now)
    assert b.wait_s(250, now + 1) == 59.0
    assert b.wait_s(250, 660.0) == 0  # a new minute


def test_server_count_wins_over_ours():
    b = WeightBudget(limit_per_minute=1000, safety=1.0)
    b.on_response(200, {"X-MBX-USED-WEIGHT-1M": "900"}, 10.0)
    assert b.wait_s(250, 10.0) == 50.0


def test_429_blocks_until_retry_after_and_418_bans_everything():
    b = WeightBudget()
    b.on_response(429, {"Retry-After": "7"}, 100.0)
    assert b.wait_s(5, 100.0) == 7.0
    assert b.wait_s(5, 106.9) > 0
    assert b.wait_s(5, 107.0) == 0
    b.on_response(418, {"Retry-After": "120"}, 200.0)
    assert b.banned
    assert b.wait_s(1, 319.0) == 1.0
    assert b.wait_s(1, 320.0) == 0


def test_missing_retry_after_assumes_two_minutes():
    b = WeightBudget()
    b.on_response(429, {}, 0.0)
    assert b.wait_s(1, 0.0) == 120.0


def test_resyncs_are_paced_per_symbol():
    p = ResyncPacer(min_interval_s=10)
    assert p.wait_s("BTC", 0.0) == 0
    p.mark("BTC", 0.0)
    assert p.wait_s("BTC", 4.0) == 6.0
    assert p.wait_s("ETH", 4.0) == 0
