"""The page in a real browser: Debian's Chromium driven by Playwright against a running tsstats. No console
error; figures appear and change within 3 s; a chart has points; a comparison created through the API appears;
switching the range redraws; a restart of the service is survived; a wrong token gets a clear prompt; a range
without data says so. A screenshot is saved (TSSTATS_SCREENSHOT names where, else the test's folder)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest
from support.server import ServerProcess

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="scripts/test.sh installs Debian's chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


def wait_until(page, expression: str, arg=None, timeout: int = 10_000) -> None:
    """Poll ``expression`` (a function or an expression) in the page until it is true. Playwright's own
    wait_for_function compiles its predicate with eval, which the page's Content-Security-Policy forbids."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} ms: {expression}")
        time.sleep(0.05)


def watch_console(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def test_the_page_live_charts_comparisons_ranges_and_a_restart(browser, server_factory, tmp_path):
    db = tmp_path / "page.duckdb"
    synth = subprocess.run([sys.executable, "-m", "tsstats", "synth", "--days", "1", "--hz", "1", "--db", str(db)],
                           capture_output=True, text=True, timeout=120)  # a day of history to draw
    assert synth.returncode == 0, synth.stderr
    server = server_factory("--flush-interval", "0.5s", db=db)
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    errors = watch_console(page)
    page.goto(server.url + "/")
    page.wait_for_selector('.figure[data-field="cpuUsage"] .value', timeout=10_000)
    first = page.inner_text("#generated")
    wait_until(page, "(seen) => document.getElementById('generated').textContent !== seen", arg=first,
                           timeout=8_000)  # the stream brings new figures every second; 8 s on a busy machine
    assert page.inner_text("#status") == "live"
    assert page.inner_text('.figure[data-field="cpuUsage"] .unit') == "%"
    assert page.inner_text('.figure[data-field="carbonFootprint"] .unit').startswith("g CO2e")
    assert "not measured: no NVIDIA GPU readings" in page.inner_text('.figure[data-field="gpuUsage"]')
    assert "estimated (CPU: TDP model, memory: DIMM model)" in page.inner_text(
        '.figure[data-field="energyConsumption"]')

    page.click('#ranges button[data-range="-15m"]')  # draw again now that samples are stored
    wait_until(page, "Number(document.querySelector('.chart').dataset.points || 0) > 0", timeout=10_000)
    wait_until(page, "[...document.querySelectorAll('.chart')].every(c => c.dataset.range === '-15m')",
               timeout=10_000)  # every chart drawn again
    assert page.locator(".chart canvas").count() == 11  # app.js CHARTS, without the GPU chart: no GPU here
    assert page.locator('.chart[data-title="GPU"]').count() == 0
    legends = page.locator(".chart").first.locator(".u-legend .u-series .u-label").all_inner_texts()
    assert legends[1:] == ["CPU %", "busiest core %"]  # words and units, not metric names
    energy = page.locator('.chart[data-title="Energy and carbon"]')
    assert energy.locator(".u-legend").inner_text().count("energy Wh") == 1 and "carbon g CO2e" in \
        energy.locator(".u-legend").inner_text()
    assert int(energy.get_attribute("data-points")) > 0

    httpx.post(server.url + "/api/comparisons", json={"models": ["llama", "mistral"], "name": "browser check"})
    page.wait_for_selector('#comparisons tr:has-text("browser check")', timeout=5_000)
    assert page.inner_text('#comparisons tr:has-text("browser check") td.fair') == "–"  # queued: not judged
    ended = httpx.post(server.url + "/api/comparisons", json={"models": ["llama"], "name": "judged run",
                                                             "status": "running"}).json()
    record = httpx.patch(server.url + f"/api/comparisons/{ended['id']}", json={"status": "completed"}).json()
    # the row may first show the run as it was when the table loaded (running, not judged): wait for its end
    page.wait_for_selector('#comparisons tr:has-text("judged run") td.fair:not(:text-is("–"))', timeout=5_000)
    cell = page.locator('#comparisons tr:has-text("judged run") td.fair')
    assert cell.inner_text() == ("yes" if record["fair"] else "no")
    assert (cell.get_attribute("title") or "") == "; ".join(record["unfairReasons"])

    page.click('#ranges button[data-range="-24h"]')
    wait_until(page, "[...document.querySelectorAll('.chart')].every(c => c.dataset.range === '-24h')",
                           timeout=10_000)
    assert page.url.endswith("/?range=-24h")  # the range is in the URL: a reload or a link keeps it
    assert page.locator(".chart .empty").first.is_hidden()  # the CPU chart has its points in the 24 h range too
    assert int(page.locator(".chart").first.get_attribute("data-points")) > 250  # the synthetic day
    # every value axis fits its widest tick, measured in the page with the axis' font; the network's bytes per
    # second read with SI prefixes (the synthetic day moves megabytes), not as 9-digit numbers cut at the edge
    for title in ("Network", "Disk", "CPU clock", "Power"):
        axis = json.loads(page.get_attribute(f'.chart[data-title="{title}"]', "data-axisy"))
        widths = page.evaluate("""(axis) => { const c = document.createElement('canvas').getContext('2d');
            c.font = axis.font; return axis.labels.map((text) => c.measureText(text).width / devicePixelRatio); }""",
                               axis)
        assert all(len(label) <= 6 for label in axis["labels"]) and max(widths) + 10 <= axis["size"], (title, axis)
    network = json.loads(page.get_attribute('.chart[data-title="Network"]', "data-axisy"))["labels"]
    assert any(label.endswith(("k", "M")) for label in network), network
    shot = os.environ.get("TSSTATS_SCREENSHOT") or str(tmp_path / "page.png")
    page.screenshot(path=shot, full_page=True)
    assert os.path.getsize(shot) > 20_000
    assert errors == [], errors

    port = server.port
    assert server.stop() == 0
    wait_until(page, "document.getElementById('status').textContent.startsWith('reconnecting')",
                           timeout=10_000)
    again = ServerProcess(db, "--flush-interval", "0.5s", port=port).start()
    try:
        seen = page.inner_text("#generated")
        wait_until(page, "document.getElementById('status').textContent === 'live'", timeout=15_000)
        wait_until(page, "(seen) => document.getElementById('generated').textContent !== seen", arg=seen,
                               timeout=5_000)
    finally:
        again.stop()
    # while the service was down, only the reconnection attempts failed
    assert all("ERR_CONNECTION_REFUSED" in error or "Failed to load resource" in error or "Failed to fetch" in error
               for error in errors), errors


def test_a_wrong_token_gets_a_clear_prompt_and_an_empty_range_says_so(browser, server_factory):
    server = server_factory("--flush-interval", "60s", env={"TSSTATS_TOKEN": "s3cret"})
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(server.url + "/")
    page.wait_for_selector("#token-form:not([hidden])", timeout=10_000)
    assert "needs its token" in page.inner_text("#token-message")
    page.fill("#token-input", "wrong")
    page.click("#token-form button")
    wait_until(page, "document.getElementById('token-message').textContent.includes('refused')",
                           timeout=10_000)
    assert page.is_visible("#token-form")
    page.fill("#token-input", "s3cret")
    page.click("#token-form button")
    page.wait_for_selector('.figure[data-field="cpuUsage"] .value', timeout=10_000)
    wait_until(page, "[...document.querySelectorAll('.chart')].every(c => c.dataset.range)", timeout=10_000)
    # nothing flushed yet (60 s): the CPU chart draws the samples still in memory; a chart whose metrics this
    # machine does not give says its range has no data, and only those do
    assert int(page.locator(".chart").first.get_attribute("data-points")) > 0
    assert page.locator(".chart").first.locator(".empty").is_hidden()
    for chart in page.locator(".chart").all():
        empty = chart.locator(".empty")
        assert empty.is_visible() == (chart.get_attribute("data-points") == "0")
        if empty.is_visible():
            assert empty.inner_text() == "no data in this range"


def test_the_models_table_sorts_by_any_column(browser, server_factory):
    server = server_factory()
    for model, accuracy in (("alpha", 70.0), ("beta", 90.0), ("gamma", 80.0)):
        cid = httpx.post(server.url + "/api/comparisons", json={"models": [model], "status": "running"}).json()["id"]
        httpx.patch(server.url + f"/api/comparisons/{cid}", json={"status": "completed", "accuracy": accuracy,
                                                                  "items": 10})
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = watch_console(page)
    page.goto(server.url + "/")
    page.wait_for_selector('#models tr[data-model="gamma"]', timeout=10_000)
    wait_until(page, "[...document.querySelectorAll('.chart')].every(c => c.dataset.range)", timeout=10_000)

    def order() -> list[str]:
        return [row.get_attribute("data-model") for row in page.locator("#models tbody tr").all()]

    assert order() == ["alpha", "beta", "gamma"]  # by name at first
    page.click('#models th[data-key="accuracy"]')
    assert order() == ["beta", "gamma", "alpha"]  # the highest first
    page.click('#models th[data-key="accuracy"]')
    assert order() == ["alpha", "gamma", "beta"]
    assert page.get_attribute('#models th[data-key="accuracy"]', "aria-sort") == "ascending"
    assert "J per item" in page.inner_text("#models thead") and errors == [], errors


def test_the_range_in_the_url_a_narrow_window_and_figures_before_the_checks(browser, server_factory, tmp_path):
    """A link with ?range= opens on that range; at 480 px nothing scrolls sideways; the figures are drawn from
    the first stats answer even while /api/check has not answered."""
    from support.powercap import FakePowercap

    FakePowercap(tmp_path / "powercap", packages=1, dram=False)  # RAPL for the CPU, the DIMM model for memory
    server = server_factory("--powercap-root", str(tmp_path / "powercap"))
    page = browser.new_page(viewport={"width": 480, "height": 900})
    errors = watch_console(page)
    held: list = []
    page.route("**/api/check", lambda route: held.append(route))  # not answered until the end
    page.goto(server.url + "/?range=-1h")
    page.wait_for_selector('.figure[data-field="cpuUsage"] .value', timeout=10_000)
    assert held, "the page asked for /api/check"
    assert page.get_attribute('#ranges button[data-range="-1h"]', "class") == "active"
    wait_until(page, "[...document.querySelectorAll('.chart')].every(c => c.dataset.range === '-1h')",
               timeout=10_000)
    badge = page.inner_text('.figure[data-field="energyConsumption"] .est')
    assert badge == "estimated (memory: DIMM model)"  # the CPU is metered: only the memory is a model's
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    for route in held:
        route.continue_()
    assert errors == [], errors


def test_models_with_their_spread_and_front_and_a_study_with_error_bars(browser, server_factory):
    """The models table's ± columns and Pareto marks as /api/models gives them, the front drawn on the accuracy
    against energy chart, the comparisons' models and per-item energy in joules, and a study's bars with their
    intervals as error bars and its ratio table."""
    server = server_factory()
    for model, accuracies, items in (("alpha", (70, 72, 71), 10), ("beta", (90, 91, 89), 1000), ("gamma", (80, 79, 81),
                                                                                                 100)):
        for accuracy in accuracies:
            cid = httpx.post(server.url + "/api/comparisons", json={
                "models": [model], "status": "running", "items": items,
                "metadata": {"study": "page study", "command": model}}).json()["id"]
            httpx.patch(server.url + f"/api/comparisons/{cid}", json={"status": "completed", "accuracy": accuracy})
    models = {item["model"]: item for item in httpx.get(server.url + "/api/models").json()["items"]}
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = watch_console(page)
    page.goto(server.url + "/")
    page.wait_for_selector('#models tr[data-model="gamma"]', timeout=10_000)
    headers = page.locator("#models thead th").all_inner_texts()
    assert headers.count("±") == 3 and "Pareto" in headers
    row = page.locator('#models tr[data-model="beta"] td').all_inner_texts()
    half = (models["beta"]["spread"]["accuracy"]["ci95High"] - models["beta"]["spread"]["accuracy"]["ci95Low"]) / 2
    assert float(row[headers.index("±")]) == pytest.approx(half, rel=0.01)
    front = {name for name, item in models.items() if item["pareto"]}
    assert front and row[headers.index("Pareto")] == ("yes" if models["beta"]["pareto"] else "no")
    page.wait_for_selector("#pareto circle", timeout=5_000)
    drawn = {circle.get_attribute("data-model") for circle in page.locator("#pareto circle.front").all()}
    assert drawn == front and page.locator("#pareto circle").count() == 3
    labels = page.locator("#pareto text").all_text_contents()
    assert "energy per item (J)" in labels and "accuracy (%)" in labels

    page.wait_for_selector("#study-bars rect.bar", timeout=5_000)
    assert page.locator("#study-select option").first.get_attribute("value") == "page study"
    assert page.locator("#study-bars rect.bar").count() == 3
    for error in page.locator("#study-bars line.error[data-low]").all():
        name = error.get_attribute("data-name")
        mean = float(page.get_attribute(f'#study-bars rect.bar[data-name="{name}"]', "data-mean"))
        assert float(error.get_attribute("data-low")) <= mean <= float(error.get_attribute("data-high"))
    assert page.locator("#study-bars line.error[data-low]").count() == 3  # three trials each: an interval each
    ratios = page.locator("#study-ratios tbody tr")
    assert ratios.count() >= 4 and "significant" in page.inner_text("#study-ratios")

    comparisons = page.locator("#comparisons thead th").all_inner_texts()
    assert comparisons[2] == "models" and "J per item" in comparisons and "energy J" in comparisons
    first = page.locator("#comparisons tbody tr").first.locator("td").all_inner_texts()
    assert first[2] in models and first[comparisons.index("J per item")].endswith("J")
    assert errors == [], errors
