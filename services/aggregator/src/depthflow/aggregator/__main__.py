"""``python -m depthflow.aggregator``: wiring only."""

from __future__ import annotations

from depthflow.aggregator.config import AggregatorConfig
from depthflow.aggregator.handlers import AggregatorHandlers
from depthflow.common.config import load_config
from depthflow.common.messages import DepthSnapshot, TradeBatch
from depthflow.common.runtime import Service, run_main


async def build() -> Service:
    cfg = load_config(AggregatorConfig, "aggregator", needs=("nats", "redis"))
    service = Service("aggregator", cfg.runtime)
    h = AggregatorHandlers(cfg, service.subjects)
    s = service.subjects
    service.consume("MD", s.md_depth(), DepthSnapshot, h.on_depth_snapshot, "depth")
    service.consume("MD", s.md_trade(), TradeBatch, h.on_trade_batch, "trade")
    service.checkpoint("MD", h, cfg.checkpoint_interval_s)
    return service


def main() -> None:
    run_main(build)


if __name__ == "__main__":
    main()
