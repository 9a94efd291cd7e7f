"""Subject and stream names are part of the contract between services."""

import pytest

from depthflow.common.subjects import Subjects, subject_matches


def test_subjects_with_no_prefix_follow_domain_kind_venue_symbol():
    s = Subjects()
    assert s.md_depth("binance", "BTCFDUSD") == "md.depth.binance.BTCFDUSD"
    assert s.md_trade("binance", "BTCFDUSD") == "md.trade.binance.BTCFDUSD"
    assert s.agg_book("binance", "ETHFDUSD") == "agg.book.binance.ETHFDUSD"
    assert s.agg_profile() == "agg.profile.*.*"
    assert s.peaks_zones("binance", "X") == "peaks.zones.binance.X"
    assert s.signal_fused("binance", "X") == "signal.fused.binance.X"
    assert s.risk_order("binance", "X") == "risk.order.binance.X"
    assert s.risk_fill("binance", "X") == "risk.fill.binance.X"
    assert s.risk_state("binance") == "risk.state.binance"
    assert s.dlq("risk") == "dlq.risk"
    assert s.ctl("risk", "halt") == "ctl.risk.halt"
    assert s.stream("MD") == "MD"
    assert s.stream_subjects("SIGNALS") == ["signal.>"]


def test_subjects_with_prefix_are_namespaced_everywhere():
    s = Subjects("t1234abcd")
    assert s.md_depth("binance", "BTCFDUSD") == "t1234abcd.md.depth.binance.BTCFDUSD"
    assert s.stream("AGG") == "T1234ABCD_AGG"
    assert s.stream_subjects("AGG") == ["t1234abcd.agg.>"]
    assert s.kv_bucket("control") == "t1234abcd-control"
    assert s.stream_of("t1234abcd.peaks.zones.binance.X") == "T1234ABCD_PEAKS"


@pytest.mark.parametrize("bad", ["BTC.USDT", "", "BTC USDT", "A>", "*x"])
def test_symbol_with_dot_or_wildcard_is_rejected(bad):
    with pytest.raises(ValueError, match="symbol"):
        Subjects().md_depth("binance", bad)


def test_unknown_stream_is_rejected():
    with pytest.raises(ValueError, match="unknown stream"):
        Subjects().stream("FUSION")


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("md.depth.*.*", "md.depth.binance.BTC", True),
        ("md.depth.*.*", "md.trade.binance.BTC", False),
        ("md.>", "md.depth.binance.BTC", True),
        ("md.depth.*", "md.depth.binance.BTC", False),
        ("md.depth.binance.BTC", "md.depth.binance.BTC", True),
        ("md.>", "md", False),
    ],
)
def test_subject_matches_follows_nats_wildcards(pattern, subject, expected):
    assert subject_matches(pattern, subject) is expected


@pytest.mark.parametrize("prefix", ["", "t1234abcd"])
def test_parse_inverts_every_builder(prefix):
    s = Subjects(prefix)
    for build, stage in [(s.md_depth, "md.depth"), (s.md_trade, "md.trade"), (s.md_status, "md.status"),
                         (s.agg_book, "agg.book"), (s.agg_profile, "agg.profile"),
                         (s.peaks_zones, "peaks.zones"), (s.signal_fused, "signal.fused"),
                         (s.risk_order, "risk.order"), (s.risk_fill, "risk.fill")]:
        p = s.parse(build("binance", "ETH_FDUSD-1"))
        assert (p.stage, p.venue, p.symbol) == (stage, "binance", "ETH_FDUSD-1")
    assert s.parse(s.risk_state("binance")) == type(p)("risk", "state", "binance", "")
    assert s.parse(s.dlq("peaks")) == type(p)("dlq", "peaks")


@pytest.mark.parametrize(
    "subject",
    ["other.md.depth.binance.X", "md.depth.binance", "md.depth.binance.X.Y", "nope.a.b.c", "dlq",
     "md.depth.binance.*", "risk.state", "ctl.risk.halt"],
)
def test_parse_refuses_what_no_builder_makes(subject):
    with pytest.raises(ValueError, match="subject"):
        Subjects("other2" if subject.startswith("other.") else "").parse(subject)
