"""``depthflow halt`` / ``resume``: set a venue's trading state and say the transition made."""

from __future__ import annotations

import argparse
import asyncio

from depthflow.common.redact import mask_url
from depthflow.ctl.commands.console import say
from depthflow.ctl.commands.servers import server_urls
from depthflow.ctl.control import RefusedCommand, set_trading_state


def cmd_state(args: argparse.Namespace) -> int:
    urls, _ = server_urls(args.state, start=False)
    state = "HALTED" if args.command == "halt" else "ACTIVE"
    try:
        prev = asyncio.run(set_trading_state(urls.nats, args.prefix, args.venue, state))
    except RefusedCommand as exc:
        say(f"{args.command} refused: {exc}")
        return 2
    except Exception as exc:  # any failure is told, and the exit code says it
        say(f"{args.command} failed: {mask_url(str(exc)) or type(exc).__name__}")
        return 1
    say(f"trading state {prev} -> {state} (venue {args.venue})")
    return 0
