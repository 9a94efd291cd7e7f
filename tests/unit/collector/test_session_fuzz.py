"""Whatever bytes arrive, the session counts bad frames and keeps its books exact."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depthflow.collector.book import BookState
from depthflow.collector.recording import Frame
from depthflow.collector.session import MarketSession
from depthflow.common.messages import TradeBatch, i64

SNAPSHOT = b'{"lastUpdateId":100,"bids":[["10.00","1.0"],["9.99","2.0"]],"asks":[["10.01","1.5"]]}'
DIFF = (b'{"stream":"xyzusdt@depth@100ms","data":{"e":"depthUpdate","E":1700000000000,"s":"XYZUSDT",'
        b'"U":101,"u":102,"b":[["10.00","3.0"]],"a":[["10.02","1.0"]]}}')
TRADE = (b'{"stream":"xyzusdt@aggTrade","data":{"e":"aggTrade","E":1700000000000,"s":"XYZUSDT","a":5,'
         b'"p":"10.00","q":"0.5","f":7,"l":7,"T":1700000000000,"m":true,"M":true}}')


def mutations() -> st.SearchStrategy[bytes]:
    real = st.sampled_from([DIFF, TRADE])
    cut = st.builds(lambda b, n: b[: n % len(b)], real, st.integers(0, 500))
    flip = st.builds(
        lambda b, i, v: b[: i % len(b)] + bytes([v]) + b[i % len(b) + 1 :],
        real, st.integers(0, 500), st.integers(0, 255),
    )
    return st.one_of(st.binary(max_size=300), cut, flip)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutations(), min_size=1, max_size=20))
def test_session_survives_any_frames(bad_frames):
    session = MarketSession("binance", {"XYZUSDT"}, depth=10)
    now = 1_700_000_000_000_000_000  # frames and books are stamped after 2017 (TS_FLOOR_NS)
    session.on_frame(Frame(now, "ws", None, DIFF))
    session.on_frame(Frame(now + 1, "rest_depth", "XYZUSDT", SNAPSHOT))
    assert session.books["XYZUSDT"].state is BookState.LIVE
    before = session.stats.copy()
    out = []
    for raw in bad_frames:
        out += session.on_frame(Frame(now + 2, "ws", None, raw))  # must never raise
    out += session.flush()
    # each frame has exactly one fate, counted once: not "at least", which setup counters inflate
    delta = session.stats - before
    fates = ["malformed", "ignored", "other_symbol", "server_shutdown", "trade_duplicate"]
    counted = sum(delta[k] for k in fates) + sum(v for k, v in delta.items() if k.startswith("diff_"))
    accepted_trades = sum(i64(m.ids).size for m in out if isinstance(m, TradeBatch))
    assert counted + accepted_trades == len(bad_frames)
    book = session.books["XYZUSDT"]
    if book.state is BookState.LIVE:  # whatever got through kept the book uncrossed
        assert book.bids.peekitem(-1)[0] < book.asks.peekitem(0)[0]
