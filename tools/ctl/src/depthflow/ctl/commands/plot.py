"""``depthflow plot``: PNG + HTML of a symbol's book, trade profile and zones, live or replayed."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from depthflow.ctl.commands.console import say
from depthflow.ctl.commands.servers import server_urls


def cmd_plot(args: argparse.Namespace) -> int:
    # imported here: matplotlib, plotly and the services' handlers take seconds to import, and
    # only this command needs them
    from depthflow.ctl.inprocess import latest_from_replay
    from depthflow.ctl.latest import latest_from_bus
    from depthflow.ctl.plot import render

    symbol = args.symbol.upper()
    if args.until is not None and not args.replay:
        say("--until needs --replay (live data has no timeline to stop in)")
        return 2
    try:
        if args.replay:
            book, profile, zones = asyncio.run(
                latest_from_replay(args.replay, symbol, args.until, venue=args.venue))
            source = f"replay {args.replay.name}" + (f" +{args.until:g}s" if args.until is not None else "")
        else:
            urls, _ = server_urls(args.state, start=False)
            book, profile, zones = asyncio.run(latest_from_bus(urls, args.prefix, args.venue, symbol))
            source = "live"
    except LookupError as exc:
        say(str(exc))
        return 1
    out: Path = args.out if args.out is not None else args.state / "plots"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(zones.ts_event / 1e9))
    stem = out / f"{symbol}-{'replay' if args.replay else 'live'}-{stamp}"
    render(book, profile, zones, stem.with_suffix(".png"), stem.with_suffix(".html"), source=source)
    print(stem.with_suffix(".png"))
    print(stem.with_suffix(".html"))
    return 0
