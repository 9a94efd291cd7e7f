"""``python -m depthflow.risk``: wiring only."""

from __future__ import annotations

from depthflow.common.config import load_config
from depthflow.common.endpoints import POSTGRES_URL_ENV
from depthflow.common.messages import BookBuckets, SignalFused
from depthflow.common.runtime import Service, run_main
from depthflow.risk.config import RiskConfig
from depthflow.risk.handlers import RiskHandlers
from depthflow.risk.hotstate import HotState
from depthflow.risk.storage import Ledger


async def build() -> Service:
    cfg = load_config(RiskConfig, "risk", needs=("nats", "postgres", "redis"))
    rt = cfg.runtime
    service = Service("risk", rt)
    ledger = await service.reach(  # bounded: an unreachable ledger is an error naming the setting
        "Postgres", POSTGRES_URL_ENV, rt.postgres_url,
        lambda: Ledger.open(rt.postgres_url, rt.venue, cfg.starting_cash, cfg.storage_timeout_s),
    )
    hot = HotState.connect(rt.redis_url, rt.prefix, rt.venue)
    h = RiskHandlers(cfg, service.subjects, ledger, hot)
    s = service.subjects
    service.on_start(h.bind)
    service.readiness(lambda: h.storage_ok)
    service.task(lambda _bus: h.watch_storage(service.stopping))
    service.on_close(ledger.close)
    service.on_close(hot.close)
    # admit=False: risk answers a foreign venue, unknown symbol or future stamp with a rejection
    service.consume("SIGNALS", s.signal_fused(), SignalFused, h.on_signal_fused, "signal", admit=False)
    service.consume("AGG", s.agg_book(), BookBuckets, h.on_book_buckets, "book")
    return service


def main() -> None:
    run_main(build)


if __name__ == "__main__":
    main()
