"""``depthflow plot`` on real recorded Binance traffic: the replay runs the services' own code,
the PNG and the HTML come out readable and self-contained, and every zone peaks sent is drawn
(vacuums only inside the book's known range: outside it the book is unknown, not empty); prices
are printed at the symbol's precision, and the renderers import no service."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from PIL import Image

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


def plotly_figure(page: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The traces and the layout the page hands to ``Plotly.newPlot``: what the browser draws."""
    dec = json.JSONDecoder()
    after_id = page.index(",", page.index("Plotly.newPlot(")) + 1
    data, end = dec.raw_decode(page, page.index("[", after_id))
    layout, _ = dec.raw_decode(page, page.index("{", end))
    return data, layout


def marker_prices(data: list[dict[str, Any]], *names: str) -> list[float]:
    """The prices (y) of every marker trace named one of ``names``."""
    return sorted(y for t in data if t.get("name") in names for y in t["y"])


def bands(layout: dict[str, Any]) -> set[tuple[float, float]]:
    """The price extents of every rectangle drawn across a panel."""
    return {(s["y0"], s["y1"]) for s in layout["shapes"] if s["type"] == "rect"}


# Where the price axis is in the PNG: the figure is 1000 px tall and the panels span 13.5 % to
# 88.5 % of it (the gridspec); the book panel is the left one, from 6.5 % of 1600 px to ~50 %.
PNG_H, AX_BOTTOM, AX_TOP = 1000, 0.135, 0.885
BOOK_COLUMNS = slice(115, 790)


def row_of(price: float, price_range: tuple[float, float]) -> float:
    """The PNG pixel row (0 at the top) a price is drawn at."""
    lo, hi = price_range
    return PNG_H * (1 - (AX_BOTTOM + (price - lo) / (hi - lo) * (AX_TOP - AX_BOTTOM)))


def changed_rows(a: Path, b: Path) -> np.ndarray:
    """Rows of the book panel where the two pictures differ."""
    pa = np.asarray(Image.open(a).convert("RGB"), dtype=np.int16)[:, BOOK_COLUMNS]
    pb = np.asarray(Image.open(b).convert("RGB"), dtype=np.int16)[:, BOOK_COLUMNS]
    return np.flatnonzero(np.abs(pa - pb).sum(axis=2).sum(axis=1))


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
    page = html.read_text()
    assert not re.search(r"<script[^>]*\bsrc=", page), "plotly.js must be embedded, not fetched"
    assert "plotly.js v" in page
    assert "BTCUSDT" in page

    # the page's own data: a marker at every zone's peak, a band over every zone, nothing else
    data, layout = plotly_figure(page)
    assert marker_prices(data, "support", "support wall") == sorted(z.price for z in zones.support)
    assert marker_prices(data, "resistance", "resistance wall") == sorted(z.price for z in zones.resistance)
    assert {(z.low, z.high) for z in [*zones.support, *zones.resistance]} <= bands(layout)
    assert marker_prices(data, "POC") == [zones.poc]
    lo, hi = layout["yaxis"]["range"]
    for z in [*zones.support, *zones.resistance]:
        assert lo <= z.low < z.high <= hi
    assert lo <= book.known_low
    assert book.known_high <= hi
    assert lo <= zones.mid <= hi

    # the picture: against the same messages without zones, the book panel changes at the zones'
    # pixel rows, at every zone, and nowhere else
    bare = tmp_path / "bare.png"
    no_zones = msgspec.structs.replace(zones, support=[], resistance=[])
    render(book, profile, no_zones, bare, tmp_path / "b.html", source="replay test")
    rows = changed_rows(png, bare)
    spans = [
        (row_of(z.high, drawn.price_range), row_of(z.low, drawn.price_range))
        for z in [*zones.support, *zones.resistance]
    ]
    assert all(any(top - 3 <= r <= bottom + 3 for top, bottom in spans) for r in rows), "drawn off any zone"
    for top, bottom in spans:
        assert np.any((rows >= top - 3) & (rows <= bottom + 3)), f"no zone at rows {top:.0f}..{bottom:.0f}"


async def test_vacuums_resonance_and_no_trades(replayed, tmp_path: Path) -> None:
    """Peaks does not send vacuums or resonance on this data: fake them to see them drawn (vacuums
    clipped to the known range); without a trade profile the picture still comes out."""
    book, _, zones = replayed
    inside = PriceBand(low=book.known_low + 10, high=book.known_low + 30)
    straddling = PriceBand(low=book.known_high - 5, high=book.known_high + 50)
    outside = PriceBand(low=book.known_high + 100, high=book.known_high + 120)
    res = Zone(low=zones.poc, high=zones.poc + 1, price=zones.poc, volume=1.0, strength=0.1, confidence=0.5)
    zones = msgspec.structs.replace(
        zones,
        vacuums=[inside, straddling, outside],
        resonance=[res],
        high_volume_nodes=[zones.poc],
        low_volume_nodes=[zones.mid],
    )
    drawn = render(book, None, zones, tmp_path / "v.png", tmp_path / "v.html")
    clipped = [inside, PriceBand(low=straddling.low, high=book.known_high)]
    assert drawn.vacuums == clipped
    assert drawn.vacuums_dropped == 1
    assert png_size(tmp_path / "v.png") == (1600, 1000)
    data, layout = plotly_figure((tmp_path / "v.html").read_text())
    assert marker_prices(data, "liquidity vacuum") == sorted((v.low + v.high) / 2 for v in clipped)
    assert {(v.low, v.high) for v in clipped} <= bands(layout)
    assert (outside.low, outside.high) not in bands(layout)
    assert marker_prices(data, "resonance") == [res.price]
    assert (res.low, res.high) in bands(layout)


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
    probe = (
        "import sys, depthflow.ctl.plot; print(sorted(m for m in sys.modules if m.startswith("
        "('depthflow.collector', 'depthflow.aggregator', 'depthflow.peaks', 'depthflow.risk'))))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


async def test_walls_are_drawn_apart_from_wave_zones(replayed, tmp_path: Path) -> None:
    """A wall (one or two buckets: one big order) gets its own marker trace and a dash-dot outline
    in the page, and a dash-dot line in the picture; a wave zone gets neither."""
    book, profile, zones = replayed
    below = zones.mid - 10 * zones.bucket_size
    wall = Zone(
        low=below,
        high=below + zones.bucket_size,
        price=below + zones.bucket_size / 2,
        volume=5.0,
        strength=0.2,
        confidence=0.9,
        kind="wall",
    )
    wave = msgspec.structs.replace(wall, kind="wave")
    pages = {}
    for kind, zone in (("wall", wall), ("wave", wave)):
        html = tmp_path / f"{kind}.html"
        render(book, profile, msgspec.structs.replace(zones, support=[zone]), tmp_path / "w.png", html)
        pages[kind] = html.read_text()
        assert marker_prices(plotly_figure(pages[kind])[0], "support", "support wall") == [zone.price]
    assert pages["wall"].count('"name":"support wall"') == 1
    assert pages["wave"].count('"name":"support wall"') == 0
    # the dash-dot outline on both panels (plotly.js itself names the style too: compare the pages)
    assert pages["wall"].count('"dash":"dashdot"') - pages["wave"].count('"dash":"dashdot"') == 2
