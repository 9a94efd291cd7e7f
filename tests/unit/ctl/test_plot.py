"""``depthflow plot`` on real recorded Binance traffic: the replay runs the services' own code,
the PNG and the HTML come out readable and self-contained, and every zone peaks sent is drawn
(vacuums only inside the book's known range: outside it the book is unknown, not empty); prices
are printed at the symbol's precision, and the renderers import no service."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from depthflow.common.messages import BookBuckets, PriceBand, TradeProfile, Zone, ZonesDetected, f64
from depthflow.ctl.inprocess import latest_from_replay
from depthflow.ctl.plot import clip_vacuums, render
from tests.data import CRYPTOFEED


@pytest.fixture(scope="module")
async def replayed() -> tuple[BookBuckets, TradeProfile | None, ZonesDetected]:
    return await latest_from_replay(CRYPTOFEED, "BTCUSDT", None)


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


async def test_replay_gives_coherent_messages(replayed) -> None:
    book, profile, zones = replayed
    assert book.symbol == profile.symbol == zones.symbol == "BTCUSDT"
    assert zones.ts_event == book.ts_event  # the zones are those of this very book
    assert zones.best_bid == book.best_bid
    assert zones.best_ask == book.best_ask
    assert profile.ts_event <= zones.ts_init  # the profile peaks used, not a later one
    assert book.known_low < zones.mid < book.known_high
    assert len(f64(profile.px)) > 0
    assert zones.trade_buy_volume == pytest.approx(f64(profile.buy_qty).sum())
    assert zones.support
    assert zones.resistance


async def test_until_stops_early(replayed) -> None:
    *_, zones = await latest_from_replay(CRYPTOFEED, "BTCUSDT", 30.0)
    assert zones.ts_event < replayed[2].ts_event
    with pytest.raises(LookupError):
        await latest_from_replay(CRYPTOFEED, "BTCUSDT", 0.0)


async def test_render_png_and_html(replayed, tmp_path: Path) -> None:
    book, profile, zones = replayed
    png, html = tmp_path / "p" / "btc.png", tmp_path / "btc.html"
    drawn = render(book, profile, zones, png, html, source="replay test")

    assert png_size(png) == (1600, 1000)
    assert png.stat().st_size > 20_000
    page = html.read_text()
    assert not re.search(r"<script[^>]*\bsrc=", page), "plotly.js must be embedded, not fetched"
    assert "plotly.js v" in page
    assert len(page) > 1_000_000
    assert "BTCUSDT" in page

    assert drawn.support == zones.support
    assert drawn.resistance == zones.resistance
    assert drawn.resonance == zones.resonance
    assert drawn.poc == zones.poc
    assert drawn.value_area == (zones.value_area_low, zones.value_area_high)
    lo, hi = drawn.price_range
    for z in [*drawn.support, *drawn.resistance]:
        assert lo <= z.low < z.high <= hi
    assert lo <= book.known_low
    assert book.known_high <= hi
    assert lo <= zones.mid <= hi


async def test_vacuums_resonance_and_no_trades(replayed, tmp_path: Path) -> None:
    """Peaks does not send vacuums or resonance on this data: fake them to see them drawn (vacuums
    clipped to the known range); without a trade profile the picture still comes out."""
    book, _, zones = replayed
    inside = PriceBand(low=book.known_low + 10, high=book.known_low + 30)
    straddling = PriceBand(low=book.known_high - 5, high=book.known_high + 50)
    outside = PriceBand(low=book.known_high + 100, high=book.known_high + 120)
    res = Zone(low=zones.poc, high=zones.poc + 1, price=zones.poc, volume=1.0, strength=0.1, confidence=0.5)
    zones = msgspec.structs.replace(zones, vacuums=[inside, straddling, outside], resonance=[res],
                                    high_volume_nodes=[zones.poc], low_volume_nodes=[zones.mid])
    drawn = render(book, None, zones, tmp_path / "v.png", tmp_path / "v.html")
    assert drawn.vacuums == [inside, PriceBand(low=straddling.low, high=book.known_high)]
    assert drawn.vacuums_dropped == 1
    assert drawn.resonance == [res]
    assert png_size(tmp_path / "v.png") == (1600, 1000)
    assert "liquidity vacuum" in (tmp_path / "v.html").read_text()


def test_clip_vacuums_drops_empty_intersections() -> None:
    kept, dropped = clip_vacuums([PriceBand(low=0, high=5), PriceBand(low=5, high=8)], 5.0, 10.0)
    assert kept == [PriceBand(low=5, high=8)]
    assert dropped == 1


async def test_prices_are_printed_at_the_symbols_tick(replayed, tmp_path: Path) -> None:
    book, profile, zones = replayed
    fine = msgspec.structs.replace(zones, tick_size=0.0001)
    drawn = render(book, profile, fine, tmp_path / "f.png", tmp_path / "f.html")
    assert drawn.price_decimals == 4
    assert drawn.axis_decimals == 0  # 1-unit buckets: whole prices on the axis
    page = (tmp_path / "f.html").read_text()
    assert f"POC {zones.poc:.4f}" in page
    assert f"mid {zones.mid:.4f}" in page


def test_the_renderers_import_no_service() -> None:
    """The in-process pipeline lives in depthflow.ctl.inprocess: drawing needs messages only."""
    probe = ("import sys, depthflow.ctl.plot; print(sorted(m for m in sys.modules if m.startswith("
             "('depthflow.collector', 'depthflow.aggregator', 'depthflow.peaks', 'depthflow.risk'))))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


async def test_walls_are_drawn_apart_from_wave_zones(replayed, tmp_path: Path) -> None:
    """A wall (one or two buckets: one big order) gets its own marker trace and a dash-dot outline
    in the page, and a dash-dot line in the picture; a wave zone gets neither."""
    book, profile, zones = replayed
    below = zones.mid - 10 * zones.bucket_size
    wall = Zone(low=below, high=below + zones.bucket_size, price=below + zones.bucket_size / 2, volume=5.0,
                strength=0.2, confidence=0.9, kind="wall")
    wave = msgspec.structs.replace(wall, kind="wave")
    pages = {}
    for kind, zone in (("wall", wall), ("wave", wave)):
        html = tmp_path / f"{kind}.html"
        drawn = render(book, profile, msgspec.structs.replace(zones, support=[zone]), tmp_path / "w.png",
                       html)
        assert drawn.support == [zone]
        pages[kind] = html.read_text()
    assert pages["wall"].count('"name":"support wall"') == 1
    assert pages["wave"].count('"name":"support wall"') == 0
    # the dash-dot outline on both panels (plotly.js itself names the style too: compare the pages)
    assert pages["wall"].count('"dash":"dashdot"') - pages["wave"].count('"dash":"dashdot"') == 2
