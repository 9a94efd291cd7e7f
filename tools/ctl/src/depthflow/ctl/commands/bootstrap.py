"""``depthflow bootstrap``: create or update the streams, sized from the plan, and the KV buckets."""

from __future__ import annotations

import argparse
import asyncio

from depthflow.common.config import ConfigError
from depthflow.ctl.commands.console import say
from depthflow.ctl.commands.servers import server_urls
from depthflow.ctl.control import bootstrap
from depthflow.ctl.streamplan import PlannedStreams, plan_streams


def bootstrap_streams(nats_url: str, prefix: str, venue: str, streams: PlannedStreams) -> None:
    """Bootstrap with the plan's limits and say what the streams keep (``up`` does this too)."""
    asyncio.run(bootstrap(nats_url, prefix, venue, streams.limits))
    say(f"streams {streams.description}; KV buckets routes, control ready")


def cmd_bootstrap(args: argparse.Namespace) -> int:
    try:
        streams = plan_streams(len(args.symbols.split(",")))
    except (ConfigError, ValueError) as exc:
        say(f"refused: {exc}")
        return 2
    urls, _ = server_urls(args.state, start=False)
    bootstrap_streams(urls.nats, args.prefix, args.venue, streams)
    say("bootstrap done")
    return 0
