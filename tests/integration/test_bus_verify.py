"""``Bus.verify``: what every service checks before it consumes. A stream that is missing or
captures other subjects than the services publish to would lose messages silently (published
to nothing, or into another stream); verify refuses both, naming the stream, and a bootstrap
repairs them."""

from __future__ import annotations

import pytest

from depthflow.common.bus import BusMismatch


async def test_verify_names_a_missing_stream_and_one_capturing_other_subjects(bus) -> None:
    await bus.verify()  # bootstrapped by the fixture: every stream as planned

    agg = bus.subjects.stream("AGG")
    info = await bus.js.stream_info(agg)
    planned = list(info.config.subjects or [])
    info.config.subjects = [f"{bus.subjects.prefix}.elsewhere.>"]
    await bus.js.update_stream(info.config)
    with pytest.raises(BusMismatch) as err:
        await bus.verify()
    assert str(err.value) == f"stream {agg} captures {info.config.subjects}, expected {planned}"
    await bus.verify(["MD", "PEAKS"])  # only the streams asked about

    md = bus.subjects.stream("MD")
    await bus.js.delete_stream(md)
    with pytest.raises(BusMismatch, match=rf"stream {md} does not exist; run `depthflow bootstrap`"):
        await bus.verify(["MD"])

    await bus.bootstrap()
    await bus.verify()
