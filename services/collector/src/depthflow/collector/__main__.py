"""``python -m depthflow.collector``: wiring only."""

from __future__ import annotations

from depthflow.collector.config import CollectorConfig
from depthflow.collector.live import LiveSource
from depthflow.collector.recording import RecordingRefused
from depthflow.collector.sources import GeneratorSource, ReplaySource
from depthflow.common.config import ConfigError, load_config
from depthflow.common.runtime import Service, run_main


async def build() -> Service:
    cfg = load_config(CollectorConfig, "collector")
    service = Service("collector", cfg.runtime)
    source = {"generator": GeneratorSource, "replay": ReplaySource, "live": LiveSource}[cfg.source]
    try:
        service.task(source(cfg, service).run)
    except RecordingRefused as exc:  # stops start-up with the reason, as a bad setting does
        raise ConfigError(f"replay refused: {exc}") from None
    return service


def main() -> None:
    run_main(build)


if __name__ == "__main__":
    main()
