"""The report in a real browser: headless Chromium (Debian's ``chromium``) opens it with no
console error, and a screenshot shows every chart drawn."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report.run_report import write_report
from tests.capacity._browser import chromium, chromium_binary, decode_png, ink, open_and_capture

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.needs("chromium"),
]
WIDTH = 860
# Shares of a chart's box: dark pixels (tick labels, axis titles) and saturated ones (the data:
# lines, markers, bars). An empty frame has no saturated pixel at all.
MIN_DARK = 0.005
MIN_COLOURED = 0.002


async def test_report_renders_without_errors_and_draws_its_charts(
    synthetic_run: Path, tmp_path: Path
) -> None:
    report = write_report(synthetic_run)
    binary = chromium_binary()
    assert binary is not None
    async with chromium(binary) as page:
        charts, png = await open_and_capture(page, report.as_uri(), WIDTH)
        errors = page.console_errors()
        # The error capture itself works: a deliberate console.error is seen.
        await page.call("Runtime.evaluate", expression="console.error('probe-error')")
        await page.call("Runtime.evaluate", expression="1")
        assert any("probe-error" in e for e in page.console_errors())
    (tmp_path / "report.png").write_bytes(png)
    assert errors == []
    image = decode_png(png)
    assert image.width == WIDTH and image.height > 3000
    names = {c["name"] for c in charts}
    assert {"throughput-vs-load", "usl", "latency-vs-throughput", "rate", "latency-spectrum",
            "funnel-pay"} <= names  # fmt: skip
    for c in charts:
        assert c["w"] > 300 and c["h"] > 60, c
        dark, coloured = ink(image.region(int(c["x"]), int(c["y"]), int(c["w"]), int(c["h"])))
        assert dark > MIN_DARK and coloured > MIN_COLOURED, (c["name"], dark, coloured)
    # The page's right margin is blank: the measure tells drawn from empty.
    blank_share, _ = ink(image.region(WIDTH - 16, 0, 16, image.height))
    assert blank_share < 0.001
