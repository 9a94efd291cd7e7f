"""``python -m depthflow.peaks``: wiring only."""

from __future__ import annotations

from depthflow.common.config import load_config
from depthflow.common.messages import BookBuckets, TradeProfile
from depthflow.common.runtime import Service, run_main
from depthflow.peaks.config import PeaksConfig
from depthflow.peaks.handlers import PeaksHandlers


async def build() -> Service:
    cfg = load_config(PeaksConfig, "peaks", needs=("nats", "redis"))
    service = Service("peaks", cfg.runtime)
    h = PeaksHandlers(cfg, service.subjects)
    s = service.subjects
    service.consume("AGG", s.agg_book(), BookBuckets, h.on_book_buckets, "book")
    service.consume("AGG", s.agg_profile(), TradeProfile, h.on_trade_profile, "profile")
    service.checkpoint("AGG", h, cfg.checkpoint_interval_s)
    return service


def main() -> None:
    run_main(build)


if __name__ == "__main__":
    main()
