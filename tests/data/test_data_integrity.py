"""Every recorded file named in SOURCES.md is present and byte-identical to its published blob."""

from __future__ import annotations

import hashlib
import re

from tests.data import BINANCE, BINANCE_FUTURES, BINANCE_US, CRYPTOFEED, HFT_0808, HFT_0809

ROW = re.compile(r"^\| `([^`]+)` \|.*\| (\d+) \| ([0-9a-f]{40}) \| ([0-9a-f]{64}) \|$", re.M)


def _rows() -> list[tuple[str, int, str, str]]:
    text = (BINANCE / "SOURCES.md").read_text()
    return [(name, int(size), blob, sha) for name, size, blob, sha in ROW.findall(text)]


def test_sources_lists_every_file_the_tests_use() -> None:
    listed = {BINANCE / name for name, *_ in _rows()}
    used = {HFT_0808, HFT_0809, CRYPTOFEED, *BINANCE_US, *BINANCE_FUTURES}
    assert used <= listed, sorted(str(p) for p in used - listed)


def test_every_listed_file_matches_its_size_git_blob_and_sha256() -> None:
    rows = _rows()
    assert len(rows) == 7
    for name, size, blob, sha in rows:
        data = (BINANCE / name).read_bytes()
        assert len(data) == size, name
        assert hashlib.sha256(data).hexdigest() == sha, name
        git = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        assert git == blob, name


def test_each_source_keeps_its_licence_notice() -> None:
    assert "Copyright (c) 2022 nkaz001" in (BINANCE / "hftbacktest/LICENSE").read_text()
    cf = (BINANCE / "cryptofeed/LICENSE").read_text()
    assert "Bryant Moscon" in cf
    assert "This product includes software developed by" in cf
