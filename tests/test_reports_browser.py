"""Reports and the local web UI in a real headless Chromium.

One warehouse built with the real stages (WARC -> math-aware extraction -> langid; JSONL
with planted exact duplicates; text stats, heuristics, a fastText classifier, exact dedup;
quality buckets; two blend versions; a short training run) is reported on, then:
every chart drew one mark per data point, the browser logged no error, pages fit a laptop
screen, the dark theme is applied, screenshots are not blank; the UI lists everything,
its SQL box pages through rows and refuses writes, and `dataengine ui` stops on Ctrl-C.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import pytest

import dataengine as de
from browser import (check_figures, console_errors, fits_the_screen, luminance, screenshot, screenshot_dir,
                     start_chromium, stop_chromium, theme_colors, use_theme)

pytestmark = pytest.mark.slow

DUPLICATES = 12


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """A warehouse with every kind of annotation the table report draws, blends and runs."""
    folder = tmp_path_factory.mktemp("reports")
    wh = de.open_warehouse(folder / "wh", create=True)
    data = resources.files("dataengine") / "data"
    de.run(wh, de.pipeline(Path(str(data / "cc-main-2020-34-excerpt.warc.gz")), ["math_extract", "langid"], to="raw",
                           name="warc"), progress=False)
    with gzip.open(data / "demo_corpus.jsonl.gz", "rt") as fh:
        records = [json.loads(line) for line in fh][:160]
    copies = [{**r, "id": f"copy-{i}"} for i, r in enumerate(records[:DUPLICATES])]  # exact duplicates
    jsonl = folder / "docs.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records + copies))
    de.ingest_jsonl(wh, [str(jsonl)], table="raw", mode="append", progress=False)
    de.train_classifier(wh, "long", "SELECT text FROM raw WHERE strlen(text) > 1500",
                        "SELECT text FROM raw WHERE strlen(text) <= 1500", epoch=3)
    annotate = de.run(wh, de.pipeline("raw", [
        "text_stats", de.stage("heuristics", presets=["gopher", "fineweb"]),
        de.stage("classifiers", classifiers=[{"name": "long", "model": "long"}]), "exact_dedup",
    ], to="raw", name="annotate", shards=3), progress=False)
    de.fit_quality(wh, "raw", ["long"])
    de.apply_quality(wh, "raw", ["long"], progress=False)
    de.create_blend(wh, {"name": "mix", "phases": [{"name": "broad", "token_share": 0.6},
                                                    {"name": "hq", "token_share": 0.4}],
                         "components": [
                             {"name": "long", "sql": "SELECT id, text FROM raw WHERE text_words > 200 AND dup_keep",
                              "weight": 1.0, "phase": "hq"},
                             {"name": "short", "sql": "SELECT id, text FROM raw WHERE text_words <= 200 AND dup_keep",
                              "weight": 1.0, "phase": "broad"}]})
    de.freeze_blend(wh, "mix")
    de.train_tokenizer(wh, "mix@1", 384, name="bpe")
    de.create_blend(wh, "mix", {"long": ("SELECT id, text FROM raw WHERE text_words > 300 AND dup_keep", 0.5),
                                "short": ("SELECT id, text FROM raw WHERE text_words <= 300 AND dup_keep", 0.5)},
                    replace=True)
    de.freeze_blend(wh, "mix", tokenizer="bpe")  # exported with the tokenizer the training run uses
    summary = de.train(wh, "mix@2", tokenizer="bpe", fresh=True, progress=False,
                       overrides={"steps": 12, "eval_every": 6, "checkpoint_every": 12, "log_every": 1})
    stages = [name for name, st in annotate.stats.items() if "rows_in" in st]  # exact_dedup's reduce too
    return {"wh": wh, "folder": folder, "annotate": annotate.run_id, "stages": stages, "training": summary}


@pytest.fixture(scope="module")
def browser():
    driver = start_chromium()
    yield driver
    stop_chromium(driver)


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return screenshot_dir(tmp_path_factory)


def _open(browser, url: str) -> None:
    browser.get(url)
    assert not console_errors(browser), console_errors(browser)


def _wait_for_url(browser, pattern: str, timeout: float = 30) -> None:
    """Wait until the page a click navigated to is loaded (its URL matches ``pattern``)."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout).until(expected_conditions.url_matches(pattern))
    WebDriverWait(browser, timeout).until(lambda b: b.execute_script("return document.readyState") == "complete")


def _click_until(browser, button: str, element: str, text: str, timeout: float = 30) -> None:
    """Click ``button`` (it submits a form: a page load) and wait for the new page's ``element`` to
    say ``text``; find_element right after a click can race the navigation."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.find_element("id", button).click()
    WebDriverWait(browser, timeout).until(expected_conditions.text_to_be_present_in_element(("id", element), text))


def test_table_report_draws_every_section_in_light_and_dark(lake, browser, shots):
    wh = lake["wh"]
    path = de.write_report(wh, "raw", lake["folder"] / "raw.html")
    _open(browser, path.as_uri())
    use_theme(browser, "light")
    figures = check_figures(browser)
    charts = {f["chart"] for f in figures}
    for wanted in ("documents per language", "words per document (log scale)", "documents per extraction status",
                   "documents passing each heuristic family (%)", "documents per ensemble quality bucket (0-19)",
                   "documents per quality level", "dup: documents by cluster size",
                   "documents by number of equations"):
        assert wanted in charts, (wanted, charts)
    by_chart = {f["chart"]: f for f in figures}
    assert by_chart["documents per ensemble quality bucket (0-19)"]["marks"] == 20
    languages = wh.sql("SELECT count(DISTINCT coalesce(language, '(none)')) AS n FROM raw").to_pylist()[0]["n"]
    assert by_chart["documents per language"]["marks"] == min(languages, 16)
    # the numbers drawn are the table's: the duplicate chart shows the planted pairs
    text = browser.find_element("css selector", "figure[data-chart='dup: documents by cluster size'] svg").text
    assert str(2 * DUPLICATES) in text, text
    headings = [h.text for h in browser.find_elements("css selector", "h2")]
    assert headings[:7] == ["Language mix", "Text length", "Extraction", "Heuristic filters", "Quality",
                            "Duplicates", "Math"], headings
    assert "Diversity" not in headings  # no diversity column yet: no empty section
    fits_the_screen(browser)
    light = theme_colors(browser)
    screenshot(browser, shots / "table-report-light.png")
    use_theme(browser, "dark")
    dark = theme_colors(browser)
    assert luminance(light["background"]) > 0.9 and luminance(light["axis"]) < 0.3, light
    assert luminance(dark["background"]) < 0.15 and luminance(dark["axis"]) > 0.7, dark  # axis text follows the theme
    screenshot(browser, shots / "table-report-dark.png")
    use_theme(browser, "light")
    assert not console_errors(browser)


def test_blend_run_and_training_reports(lake, browser, shots):
    wh, folder = lake["wh"], lake["folder"]
    blend = de.write_report(wh, "mix@2", folder / "mix2.html")
    _open(browser, blend.as_uri())
    charts = {f["chart"] for f in check_figures(browser)}
    assert {"token share per component (%)", "tokens available per component", "documents per component",
            "loss of the training runs on this version"} <= charts, charts
    page = browser.find_element("tag name", "main").text
    assert "Changes since mix@1" in page and "Source snapshots" in page
    version = de.blend_version(wh, "mix@2")
    assert version["content_hash"] in page
    # the training run on this version links to its own report file, which renders too
    run_id = lake["training"]["run_id"]
    link = browser.find_element("link text", run_id).get_attribute("href")
    assert link.endswith("report.html")
    fits_the_screen(browser)
    screenshot(browser, shots / "blend-report.png")
    _open(browser, link)
    charts = {f["chart"] for f in check_figures(browser)}
    assert {"loss", "throughput", "learning rate"} <= charts
    rule = browser.find_elements("css selector", "figure[data-chart='loss'] g.mark-rule.role-mark line")
    assert len(rule) == 1  # the unigram baseline
    first = de.write_report(wh, "mix@1", folder / "mix1.html")  # two phases: their shares drawn too
    _open(browser, first.as_uri())
    figures = {f["chart"]: f for f in check_figures(browser)}
    assert figures["token share per phase (%)"]["marks"] == 4  # sampled and available, per phase
    assert "Changes since" not in browser.find_element("tag name", "main").text  # a first version
    run = de.write_report(wh, lake["annotate"], folder / "run.html")
    _open(browser, run.as_uri())
    figures = {f["chart"]: f for f in check_figures(browser)}
    assert len(lake["stages"]) == 5 and figures["rows in and out per stage"]["marks"] == 2 * 5  # in and out each
    assert figures["rows written over time (each point: a shard finished)"]["marks"] == 3  # 3 shards
    screenshot(browser, shots / "run-report.png")


@pytest.fixture(scope="module")
def ui(lake):
    from dataengine.ui.server import make_server, serve

    server = make_server(lake["wh"], port=0)
    thread = threading.Thread(target=serve, args=(server,), daemon=True)
    thread.start()
    yield server.url
    server.shutdown()
    thread.join(10)


def test_ui_lists_everything_and_shows_reports(lake, ui, browser, shots):
    _open(browser, ui)
    links = {a.text: a.get_attribute("href") for a in browser.find_elements("css selector", "main a")}
    run_id = lake["training"]["run_id"]
    for name in ("raw", "mix@1", "mix@2", lake["annotate"], run_id):
        assert name in links, (name, sorted(links))
    fits_the_screen(browser)
    screenshot(browser, shots / "ui-overview.png")
    browser.get(links["raw"])
    assert not console_errors(browser)
    check_figures(browser)
    assert "Schema" in [h.text for h in browser.find_elements("css selector", "h2")]
    snapshot = browser.find_element("css selector", "section table a")  # a snapshot: the table as it was
    snapshot.click()
    _wait_for_url(browser, r"/table/raw@\d+$")
    check_figures(browser)
    browser.get(links["mix@2"])
    browser.find_element("link text", run_id).click()  # blend version -> its training run
    _wait_for_url(browser, re.escape(f"/run/{quote(run_id)}") + "$")
    assert {"loss", "throughput"} <= {f["chart"] for f in check_figures(browser)}
    assert not console_errors(browser)


def test_ui_sql_box_pages_rows_and_refuses_writes(lake, ui, browser, shots):
    wh = lake["wh"]
    total = wh.sql("SELECT count(*) AS n FROM raw").to_pylist()[0]["n"]
    _open(browser, ui + "sql")
    box = browser.find_element("id", "sql")
    box.clear()
    box.send_keys("SELECT id, language, text_words FROM raw ORDER BY id")
    _click_until(browser, "run", "sql-status", "rows 1-50")
    first = [td.text for td in browser.find_elements("css selector", "#sql-result tbody tr td:first-child")]
    expected = wh.sql("SELECT id FROM raw ORDER BY id LIMIT 50").column("id").to_pylist()
    assert first == expected
    screenshot(browser, shots / "ui-sql.png")
    _click_until(browser, "next", "sql-status", "rows 51-100")
    second = [td.text for td in browser.find_elements("css selector", "#sql-result tbody tr td:first-child")]
    assert second == wh.sql("SELECT id FROM raw ORDER BY id LIMIT 50 OFFSET 50").column("id").to_pylist()
    assert not console_errors(browser)
    for statement in ("DELETE FROM raw", "DROP TABLE raw", "INSERT INTO raw (id) VALUES ('x')",
                      "ATTACH ':memory:' AS other", "SELECT 1; DELETE FROM raw"):
        browser.get(ui + "sql?q=" + quote(statement))
        error = browser.find_element("id", "sql-error").text
        assert error.startswith("refused:") and ("read-only" in error or "one SELECT" in error), error
    assert wh.sql("SELECT count(*) AS n FROM raw").to_pylist()[0]["n"] == total  # nothing changed
    screenshot(browser, shots / "ui-sql-refused.png")


def test_ui_command_binds_loopback_and_stops_on_ctrl_c(lake):
    proc = subprocess.Popen([sys.executable, "-P", "-m", "dataengine.cli", "--warehouse", str(lake["wh"].config.root),
                             "ui", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:(\d+)/)", line)
        assert match, line + proc.stderr.read()
        import urllib.request

        assert b"Tables" in urllib.request.urlopen(match.group(1), timeout=30).read()
        request = urllib.request.Request(match.group(1) + "sql", data=b"q=DELETE", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 405
        rebound = urllib.request.Request(match.group(1), headers={"Host": f"evil.example:{match.group(2)}"})
        with pytest.raises(urllib.error.HTTPError) as foreign:
            urllib.request.urlopen(rebound, timeout=30)
        assert foreign.value.code == 403  # DNS rebinding: a page of another site cannot read the UI
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "stopped" in out and "Traceback" not in err
        with pytest.raises(OSError):
            urllib.request.urlopen(match.group(1), timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
