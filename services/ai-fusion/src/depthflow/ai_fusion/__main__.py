"""``python -m depthflow.ai_fusion``: wiring only."""

from __future__ import annotations

from depthflow.ai_fusion.config import FusionConfig
from depthflow.ai_fusion.handlers import FusionHandlers
from depthflow.common.config import load_config
from depthflow.common.messages import ZonesDetected
from depthflow.common.runtime import Service, run_main


async def build() -> Service:
    cfg = load_config(FusionConfig, "ai-fusion")
    service = Service("ai-fusion", cfg.runtime)
    h = FusionHandlers(cfg, service.subjects)
    service.consume("PEAKS", service.subjects.peaks_zones(), ZonesDetected, h.on_zones_detected, "zones")
    return service


def main() -> None:
    run_main(build)


if __name__ == "__main__":
    main()
