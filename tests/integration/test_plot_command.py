"""``depthflow plot`` without ``--replay``, as an operator runs it: a separate process reading the
live bus of a namespace draws the latest zones there (not an older message), and refuses with
a reason and a non-zero exit what it cannot draw."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import msgspec

from depthflow.ctl.inprocess import latest_from_replay
from depthflow.devstack import NATS_URL_ENV, POSTGRES_URL_ENV, REDIS_URL_ENV, ServerUrls
from tests.data import CRYPTOFEED
from tests.unit.ctl.test_plot import marker_prices, plotly_figure

URL_VARS = (NATS_URL_ENV, POSTGRES_URL_ENV, REDIS_URL_ENV)


async def plot(state: Path, prefix: str, urls: ServerUrls, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in URL_VARS}
    env.update(urls.as_env())
    argv = [sys.executable, "-m", "depthflow.ctl", "--state", str(state), "--prefix", prefix, "plot", *args]
    return await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, env=env,
                                   timeout=240, check=False)


async def test_plot_draws_the_latest_zones_on_the_bus_and_refuses_what_it_cannot(bus, isolated, tmp_path):
    book, profile, zones = await latest_from_replay(CRYPTOFEED, "BTCUSDT", None)
    assert profile is not None
    s, venue = bus.subjects, zones.venue
    older = msgspec.structs.replace(zones, support=zones.support[:1], resistance=[])
    for n, (subject, msg) in enumerate([(s.agg_book(venue, "BTCUSDT"), book),
                                        (s.agg_profile(venue, "BTCUSDT"), profile),
                                        (s.peaks_zones(venue, "BTCUSDT"), older),
                                        (s.peaks_zones(venue, "BTCUSDT"), zones)]):
        await bus.publish(subject, msg, msg_id=f"plot-test-{n}")

    done = await plot(tmp_path, isolated.prefix, isolated.urls, "btcusdt", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    png, html = (Path(line) for line in done.stdout.split())
    assert (png.parent, png.suffix, html.suffix) == (tmp_path / "out", ".png", ".html")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data, _ = plotly_figure(html.read_text())
    assert marker_prices(data, "support", "support wall") == sorted(z.price for z in zones.support)
    assert marker_prices(data, "resistance", "resistance wall") == sorted(z.price for z in zones.resistance)
    assert "source: live" in html.read_text()

    missing = await plot(tmp_path, isolated.prefix, isolated.urls, "ETHUSDT")
    assert missing.returncode == 1
    assert f"no book and zones for {venue}/ETHUSDT on the bus" in missing.stderr + missing.stdout
    bad = await plot(tmp_path, isolated.prefix, isolated.urls, "BTCUSDT", "--until", "5")
    assert bad.returncode == 2
    assert "--until needs --replay" in bad.stderr + bad.stdout
