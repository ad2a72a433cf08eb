"""A real headless Chromium for tests (Debian's chromium + chromium-driver, driven by selenium).

Checks shared by the report and UI tests: every chart drew all its marks, the browser
logged no error, the page fits a laptop screen, the dark theme is applied, and a
screenshot is not blank.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

import pytest

LAPTOP = (1366, 768)


def chromium_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def start_chromium():
    """A fresh headless Chromium (its own profile folder). Missing Chromium is a failure, not a
    skip: `make test` installs it (system-deps), so a skip would hide a broken setup."""
    paths = chromium_paths()
    if paths is None:
        pytest.fail("chromium and chromium-driver are not installed: `make system-deps` (as root) installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = paths
    profile = tempfile.mkdtemp(prefix="dataengine-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", f"--window-size={LAPTOP[0]},{LAPTOP[1]}", "--hide-scrollbars",
                "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    driver.profile_dir = profile
    return driver


def stop_chromium(driver) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(driver.profile_dir, ignore_errors=True)


def console_errors(driver) -> list[str]:
    """Errors the page logged since the last call (failed loads, script errors, CSP violations)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


CHECK_FIGURES = """
return Array.from(document.querySelectorAll('figure[data-chart]')).map(f => {
  const svg = f.querySelector('svg');
  const mark = f.dataset.mark;
  const marks = svg ? Array.from(svg.querySelectorAll('g.mark-' + mark + '.role-mark > *')) : [];
  const drawn = marks.filter(m => { const b = m.getBBox(); return b.width > 0 || b.height > 0; }).length;
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {chart: f.dataset.chart, mark: mark, expected: Number(f.dataset.points), marks: marks.length,
          drawn: drawn, width: box.width, height: box.height, figure: f.getBoundingClientRect().width};
});
"""


def check_figures(driver) -> list[dict]:
    """Every chart on the page: an SVG with one mark per data point, drawn, fitting its box."""
    figures = driver.execute_script(CHECK_FIGURES)
    for f in figures:
        assert f["width"] > 100 and f["height"] > 40, f
        assert f["expected"] > 0, f"chart {f['chart']!r} has no data"
        assert f["marks"] == f["expected"], f"chart {f['chart']!r}: {f['marks']} {f['mark']} marks for {f['expected']} points"
        assert f["drawn"] >= 1, f"chart {f['chart']!r}: nothing visible"
        assert f["width"] <= f["figure"] + 1, f"chart {f['chart']!r} overflows its box"
    return figures


def fits_the_screen(driver) -> None:
    """No horizontal scrolling of the page at a laptop's width (wide tables scroll inside themselves)."""
    width, inner = driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"page is {width}px wide in a {inner}px window"


def use_theme(driver, scheme: str) -> None:
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                           {"features": [{"name": "prefers-color-scheme", "value": scheme}]})


def luminance(css_color: str) -> float:
    """0 (black) .. 1 (white) of a computed ``rgb(...)``/``rgba(...)`` colour."""
    parts = css_color[css_color.index("(") + 1: css_color.index(")")].split(",")
    r, g, b = (float(p) for p in parts[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def theme_colors(driver) -> dict:
    """Background of the page, colour of its text, and fill of the first chart's axis labels."""
    return driver.execute_script("""
      const label = document.querySelector('figure svg .role-axis-label text');
      return {background: getComputedStyle(document.body).backgroundColor,
              text: getComputedStyle(document.body).color,
              axis: label ? getComputedStyle(label).fill : null};""")


def screenshot(driver, path: Path, full_page: bool = True) -> Path:
    """A PNG of the page (the whole page height when ``full_page``), checked non-blank."""
    from PIL import Image

    if full_page:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(LAPTOP[0], min(max(height, LAPTOP[1]), 8000))
    png = driver.get_screenshot_as_png()
    driver.set_window_size(*LAPTOP)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.resize((image.width // 4, image.height // 4))
    colors = small.getcolors(maxcolors=1 << 16) or []
    background = max(colors)[1] if colors else None
    covered = sum(n for n, c in colors if c != background) / max(1, small.width * small.height)
    assert len(colors) > 20 and covered > 0.03, f"{path} looks blank ({len(colors)} colours, {covered:.1%} drawn)"
    return path


def screenshot_dir(tmp_path_factory) -> Path:
    """Where screenshots go: $DATAENGINE_SCREENSHOTS when set (to keep them), else a test folder."""
    chosen = os.environ.get("DATAENGINE_SCREENSHOTS")
    if chosen:
        Path(chosen).mkdir(parents=True, exist_ok=True)
        return Path(chosen)
    return tmp_path_factory.mktemp("screenshots")
