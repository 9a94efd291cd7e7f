"""The collector process replays real recordings onto a real NATS and tells the truth: a renamed
hftbacktest pair still publishes BTCUSDT books (one stream across the two files), a cryptofeed
http + ws pair publishes books exactly equal to an independent rebuild with the tick its prices
show, and the replay report says what was read and skipped."""

from __future__ import annotations

from pathlib import Path

import msgspec

from depthflow.collector.recording import Recording
from depthflow.collector.replay_report import ReplayReport
from depthflow.common.messages import DepthSnapshot, TradeBatch
from tests.conftest import read_all, wait_for
from tests.data import BINANCE_US, HFT_0808, HFT_0809
from tests.unit.collector.test_replay import assert_matches, independent

US_SYMBOLS = ["BATUSD", "HNTUSD", "MANAUSD", "ZRXUSD"]


async def replay(stack, paths: list[Path], symbols: list[str], report: Path) -> None:
    """Run the collector on ``paths`` as fast as it goes and wait for it to finish cleanly (a
    replay this short may end before the stack sees it ready: that is done, not a failed start)."""
    collector = await stack(
        "collector",
        DEPTHFLOW_SYMBOLS=",".join(symbols),
        DEPTHFLOW_COLLECTOR_SOURCE="replay",
        DEPTHFLOW_COLLECTOR_REPLAY_PATHS=",".join(str(p) for p in paths),
        DEPTHFLOW_COLLECTOR_REPLAY_REPORT=str(report),
        DEPTHFLOW_COLLECTOR_SPEED="0",
    )

    async def finished() -> bool:
        return not collector.alive()["collector"]

    await wait_for(finished, within_s=120)
    assert collector.exit_codes["collector"] == 0


async def test_a_renamed_hftbacktest_pair_publishes_btcusdt_books(stack, bus, tmp_path):
    renamed = tmp_path / "spot_ethusdt_20240808.gz"
    renamed.write_bytes(HFT_0808.read_bytes())
    report_path = tmp_path / "report.json"
    await replay(stack, [renamed, HFT_0809], ["BTCUSDT"], report_path)
    s = bus.subjects
    books = [m for _, m in await read_all(bus, "MD", s.md_depth("binance", "BTCUSDT"), DepthSnapshot)]
    assert not await read_all(bus, "MD", s.md_depth("binance", "ETHUSDT"), DepthSnapshot)
    report = msgspec.json.decode(report_path.read_bytes(), type=ReplayReport)
    assert report.finished
    assert report.warnings == []
    assert report.symbols["BTCUSDT"].snapshots == {"synced": 1}  # no resync at the file boundary
    assert len(books) == report.symbols["BTCUSDT"].books > 600
    assert books[-1].last_update_id > 50093421613  # the 0809 file's diffs were applied
    assert {b.tick_size for b in books} == {0.01}
    trades = [m for _, m in await read_all(bus, "MD", s.md_trade("binance", "BTCUSDT"), TradeBatch)]
    assert {t.tick_size for t in trades} == {0.01}
    assert [f.lines for f in report.files] == [41249, 58325]


async def test_a_cryptofeed_http_and_ws_pair_publishes_exact_books(stack, bus, tmp_path):
    report_path = tmp_path / "report.json"
    await replay(stack, list(BINANCE_US), US_SYMBOLS, report_path)
    truth = independent(list(Recording(BINANCE_US).frames()))
    s = bus.subjects
    for symbol in US_SYMBOLS:
        books = [m for _, m in await read_all(bus, "MD", s.md_depth("binance", symbol), DepthSnapshot)]
        assert len(books) >= 10, symbol
        for book in books:
            assert_matches(book, truth[symbol])
            assert book.tick_size == 0.0001
    report = msgspec.json.decode(report_path.read_bytes(), type=ReplayReport)
    assert report.warnings == []
    assert [f.skipped for f in report.files] == [{"blank line": 1}, {"blank line": 1}]
    assert {s: r.tick_size for s, r in report.symbols.items()} == dict.fromkeys(US_SYMBOLS, 0.0001)
