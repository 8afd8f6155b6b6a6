"""The Web UI at ``GET /`` driven by a real headless Chromium against the real daemon (``daemon`` fixture from
tests/conftest.py: a running ``tts-ops serve`` with one worker).

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium chromium-driver``) and the
``selenium`` package. Selenium Manager is never consulted: the driver and browser paths are given explicitly,
so nothing is downloaded. A screenshot of the final page is written to /tmp/webui.png.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT = Path(os.environ.get("WEBUI_SCREENSHOT", "/tmp/webui.png"))
SENTENCE = "今天天气真好，适合出去散步。"
EMPTY_TEXT_ERROR = "'text' must not be empty"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"{CHROMIUM} not installed (apt-get install -y chromium chromium-driver)"),
]


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not os.path.exists(CHROMEDRIVER):
        pytest.fail(f"{CHROMIUM} is installed but {CHROMEDRIVER} is not: apt-get install -y chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required", "--window-size=1280,900",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _js(driver, script: str, *args):
    return driver.execute_script(script, *args)


def test_webui_synthesizes_plays_and_shows_errors(daemon, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = browser
    base_url = daemon.base_url.rstrip("/")
    driver.get(base_url + "/")
    el = lambda id_: driver.find_element(By.ID, id_)  # noqa: E731

    # The status pill polls /ready and turns green ("1/1 workers ready").
    WebDriverWait(driver, 30).until(lambda d: "pill-ok" in el("status").get_attribute("class"),
                                    message="status pill never showed ready")
    assert re.search(r"\b(\d+)/\1 workers ready", el("status").text), el("status").text

    # Text with a live counter, emotion, speed.
    text = el("text")
    assert text.get_attribute("placeholder") == SENTENCE
    text.send_keys(SENTENCE)
    assert el("counter").text == f"{len(SENTENCE)} / 1000"
    Select(el("emotion")).select_by_value("happy")
    assert el("emotion").get_attribute("value") == "happy"
    _js(driver, "arguments[0].value = '1.5';"
                "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));", el("speed"))
    assert el("speed-value").text == "1.5"

    # Record whether the button was ever disabled while the request ran (not racy, unlike polling for it).
    _js(driver, """
        const b = document.getElementById('synthesize');
        window.__sawBusy = false;
        new MutationObserver(() => { if (b.disabled) window.__sawBusy = true; })
            .observe(b, {attributes: true, attributeFilter: ['disabled']});
    """)
    el("synthesize").click()
    WebDriverWait(driver, 60, poll_frequency=0.25).until(
        lambda d: _js(d, "const p = document.getElementById('player');"
                         "return p.src.startsWith('blob:') && p.duration > 0.5;"),
        message="no playable audio in #player within 60 s")
    assert _js(driver, "return window.__sawBusy") is True
    assert el("synthesize").is_enabled()
    assert not el("error").is_displayed()

    href = el("download").get_attribute("href")
    name = el("download").get_attribute("download")
    assert href == el("player").get_attribute("src") and href.startswith("blob:"), href
    assert re.fullmatch(r"tts-[A-Za-z0-9._-]+\.wav", name), name
    assert el("download").is_displayed()

    meta = el("meta").text
    match = re.search(r"Duration (\d+\.\d+) s", meta)
    assert match, meta
    played = _js(driver, "return document.getElementById('player').duration")
    assert abs(float(match.group(1)) - played) < 0.25, (meta, played)  # X-Audio-Duration matches the audio
    assert "Worker " in meta and "Synthesis " in meta, meta

    # An empty text, submitted with Ctrl+Enter, shows the server's error message in the alert box.
    text.send_keys(Keys.CONTROL, "a")
    text.send_keys(Keys.DELETE)
    assert el("counter").text == "0 / 1000"
    text.send_keys(Keys.CONTROL, Keys.ENTER)
    WebDriverWait(driver, 15).until(lambda d: el("error").is_displayed(), message="#error never shown")
    error = el("error")
    assert error.get_attribute("role") == "alert"
    assert EMPTY_TEXT_ERROR in error.text, error.text
    assert "400" in error.text, error.text
    # The previous result stays playable, and its blob URL was not revoked.
    assert el("player").get_attribute("src") == href

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOT))

    # Nothing but our own origin was fetched, and no script errors beyond the expected 400 console line.
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base_url))
    urls = _js(driver, "return performance.getEntriesByType('resource').map(e => e.name)")
    assert urls and all(u.startswith((origin + "/", "blob:" + origin + "/")) for u in urls), urls
    severe = [entry["message"] for entry in driver.get_log("browser")
              if entry["level"] == "SEVERE" and "status of 400" not in entry["message"]]
    assert not severe, severe
