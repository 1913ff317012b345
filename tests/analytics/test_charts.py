"""The HTML chart pages: self-contained (no network), and drawn, as seen by headless Chromium.

The Chromium test takes a screenshot of the versions page and checks that the charts' areas
hold pixels of the series colours; it skips where Chromium (Debian's ``chromium``) is absent.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from collector import charts
from collector.report import write_html
from collector.store import Store
from tests.analytics.history import FleetHistory
from tests.analytics.scenario import build_fleet

GENERATED = datetime(2026, 3, 10, 12, tzinfo=UTC)


def versions_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for offset in range(10):
        day = date(2026, 3, 1 + offset)
        rows.append({"day": day, "minor_version": 28, "clusters": 5 - offset // 2, "nodes": 40})
        rows.append(
            {"day": day, "minor_version": 29, "clusters": offset // 2, "nodes": 10 * offset}
        )
    return rows


def test_versions_page_is_self_contained() -> None:
    text = charts.versions_page(versions_rows(), generated=GENERATED)
    assert text.startswith("<!DOCTYPE html>")
    assert text.count("<svg") == 2
    assert 'data-series="1.28"' in text and 'data-series="1.29"' in text
    without_ns = text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not re.search(r"(?i)(https?:|//[a-z]|<script|<link|@import|url\()", without_ns)


def test_empty_window_says_so() -> None:
    text = charts.versions_page([], generated=GENERATED)
    assert "no data in this window" in text


def test_capacity_page_labels_clusters_by_context() -> None:
    rows = [
        {"day": date(2026, 3, d), "cluster_id": "uid-1", "nodes": 3,
         "cpu_capacity_millicores": 12000, "memory_capacity_bytes": 48 * 2**30, "gpu_capacity": 0}
        for d in (1, 2, 3)
    ]  # fmt: skip
    text = charts.capacity_page(rows, generated=GENERATED, names={"uid-1": "prod-eu"})
    assert "prod-eu (uid-1)" in text
    assert "GPUs" not in text  # no GPU chart when the fleet has none


# --- headless Chromium ----------------------------------------------------------------------


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def read_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    height = color_type = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and color_type in (2, 6)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 4 if color_type == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        filt = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = prev[i]
            upleft = prev[i - bpp] if i >= bpp else 0
            if filt == 1:
                line[i] = (line[i] + left) & 0xFF
            elif filt == 2:
                line[i] = (line[i] + up) & 0xFF
            elif filt == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif filt == 4:
                p = left + up - upleft
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else upleft
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return (
        width,
        height,
        [bytes(r) for r in rows]
        if bpp == 3
        else [bytes(b for i in range(0, len(r), 4) for b in r[i : i + 3]) for r in rows],
    )


def screenshot(html: Path, png: Path, profile: Path) -> None:
    browser = _chromium()
    assert browser is not None
    subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
            "--hide-scrollbars", "--window-size=1000,900", f"--screenshot={png}",
            html.as_uri(),
        ],
        check=True, timeout=120, capture_output=True, env={**os.environ, "HOME": str(profile)},
    )  # fmt: skip


def count_colour(rows: list[bytes], area: tuple[int, int, int, int], rgb: str) -> int:
    x0, y0, x1, y1 = area
    want = bytes.fromhex(rgb.lstrip("#"))
    hits = 0
    for y in range(y0, y1):
        line = rows[y]
        for x in range(x0, x1):
            px = line[3 * x : 3 * x + 3]
            if all(abs(a - b) <= 24 for a, b in zip(px, want, strict=True)):
                hits += 1
    return hits


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed")
async def test_versions_chart_draws_in_headless_chromium(store: Store, tmp_path: Path) -> None:
    await build_fleet(FleetHistory(store))
    page = await write_html(store, "versions", tmp_path / "versions.html", since="2026-03-01")
    png = tmp_path / "shot.png"
    screenshot(page, png, tmp_path / "profile")
    width, height, rows = read_png(png.read_bytes())
    assert (width, height) == (1000, 900)
    # The first chart sits below the title (~24 px margin, h1, meta, h2): its plot area spans
    # x 70..940 of the 960-wide SVG, which starts at x 24. Count series-coloured pixels there.
    first, second = charts.PALETTE[0], charts.PALETTE[1]
    area = (24 + 72, 100, 24 + 938, min(height, 480))
    drawn = count_colour(rows, area, first) + count_colour(rows, area, second)
    assert drawn > 5000, f"only {drawn} series pixels in the chart area"
    background = count_colour(rows, area, "#ffffff")
    assert background > 1000  # and the page is not one solid block of colour
