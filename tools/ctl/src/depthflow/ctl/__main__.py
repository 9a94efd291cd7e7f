"""``depthflow``: the operator command.

    depthflow up [--duration S] [--speed X] [--detach]   servers + bootstrap + five services + summary;
                 [--replay FILE]...                     restarts a crashed service; Ctrl-C stops all;
                                                        a replay symbol without a book fails the run
                 [--canary SERVICE[:SYMBOLS]]           + a canary lane of SERVICE owning SYMBOLS,
                 [--canary-set DEPTHFLOW_X=V]...        with its own settings; rolled back by itself
                                                        when worse than stable (--canary-max-*)
    depthflow canary status|route|promote|rollback SERVICE [SYMBOLS]
                                                        move symbols between lanes at a fence
    depthflow scale SERVICE N                           run N replicas of SERVICE's stable lane
    depthflow down                                      stop services, then servers; nothing is lost
    depthflow status                                    the live summary once
    depthflow bootstrap                                 create/update streams (sized from the plan) and KV
    depthflow halt | resume                             set the trading state (audited in the KV history)
    depthflow plot SYMBOL [--replay FILE] [--until S]   PNG + HTML of book, trade profile and zones
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from depthflow.ctl.commands.bootstrap import cmd_bootstrap
from depthflow.ctl.commands.canary import add_commands, add_up_options
from depthflow.ctl.commands.lifecycle import cmd_down, cmd_status, cmd_up
from depthflow.ctl.commands.plot import cmd_plot
from depthflow.ctl.commands.trading import cmd_state

DEFAULT_STATE = Path(os.environ.get("DEPTHFLOW_STATE_DIR", ".state"))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="depthflow", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--state", type=Path, default=DEFAULT_STATE, help="state folder (.state)")
    p.add_argument("--prefix", default=os.environ.get("DEPTHFLOW_PREFIX", ""))
    p.add_argument("--venue", default=os.environ.get("DEPTHFLOW_VENUE", "binance"))
    p.add_argument("--symbols", default=os.environ.get("DEPTHFLOW_SYMBOLS", "BTCFDUSD,ETHFDUSD"))
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole pipeline")
    up.add_argument("--duration", type=float, default=0.0, help="stop after S seconds (0: Ctrl-C)")
    up.add_argument("--speed", type=float, default=1.0, help="generator speed (0: as fast as possible)")
    up.add_argument("--seed", type=int, default=5)
    up.add_argument("--replay", action="append", default=[], metavar="FILE",
                    help="replay recorded files instead of the generator (repeatable; merged by time)")
    up.add_argument("--detach", action="store_true", help="leave it running in the background")
    up.add_argument("--keep-servers", action="store_true", help="do not stop the servers at the end")
    up.add_argument("--supervisor", action="store_true", help=argparse.SUPPRESS)  # what --detach runs
    add_up_options(up)
    up.set_defaults(fn=cmd_up)
    sub.add_parser("down", help="stop services and servers").set_defaults(fn=cmd_down)
    sub.add_parser("status", help="print the summary once").set_defaults(fn=cmd_status)
    boot = sub.add_parser("bootstrap", help="create/update streams (sized for --symbols) and KV")
    boot.set_defaults(fn=cmd_bootstrap)
    sub.add_parser("halt", help="halt trading").set_defaults(fn=cmd_state)
    sub.add_parser("resume", help="resume trading after a halt").set_defaults(fn=cmd_state)
    plot = sub.add_parser("plot", help="draw book, trade profile and zones (PNG + HTML)")
    plot.add_argument("symbol")
    plot.add_argument("--replay", type=Path, metavar="FILE", help="from a recorded file, not the live bus")
    plot.add_argument("--until", type=float, metavar="SECONDS",
                      help="with --replay: stop this many seconds of recorded time after the first frame")
    plot.add_argument("--out", type=Path, metavar="DIR", help="output folder (<state>/plots)")
    plot.set_defaults(fn=cmd_plot)
    add_commands(sub)
    return p


def main() -> None:
    args = parser().parse_args()
    raise SystemExit(args.fn(args))


if __name__ == "__main__":
    main()
