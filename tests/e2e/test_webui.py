"""The Web UI at ``GET /`` driven by a real headless Chromium against the real daemon (``daemon`` fixture from
tests/conftest.py: a running ``tts-ops serve`` with one worker): synthesis, playback and download in every
format, errors clearing the old result, the API-key field with ``server.api_keys``, streamed playback of a long
text, the ops panel read from ``GET /summary``.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium chromium-driver``) and the
``selenium`` package. Selenium Manager is never consulted: the driver and browser paths are given explicitly,
so nothing is downloaded. A screenshot of the final page is written to /tmp/webui.png.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT = Path(os.environ.get("WEBUI_SCREENSHOT", "/tmp/webui.png"))
SENTENCE = "今天天气真好，适合出去散步。"
LONG_TEXT = ("今天天气真好，适合出去散步。公园里的花都开了，红的黄的紫的，非常好看。孩子们在草地上放风筝，"
             "老人们在树下下棋聊天。湖面上有几只小船慢慢地划过，水面泛起一圈圈的波纹。远处的山上云雾缭绕，"
             "像一幅美丽的山水画。傍晚的时候，夕阳把天空染成了橘红色，大家才依依不舍地回家。"
             "晚饭以后，我们一家人坐在院子里乘凉，听爷爷讲他年轻时候的故事。")
EMPTY_TEXT_ERROR = "'text' must not be empty"
API_KEY = "sk-webui-test-key-0123456789"
#: format -> (download extension, the file's first bytes)
MAGIC = {"wav": ("wav", b"RIFF"), "mp3": ("mp3", None), "opus": ("ogg", b"OggS"), "flac": ("flac", b"fLaC")}

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


def _el(driver, id_):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, id_)


def _wait(driver, predicate, timeout: float, message: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(predicate, message=message)


def _open(driver, base_url: str) -> None:
    driver.get(base_url + "/")
    # The status pill polls /ready and turns green ("1/1 workers ready").
    _wait(driver, lambda d: "pill-ok" in _el(d, "status").get_attribute("class"), 30, "status pill never ready")


def _set_text(driver, value: str) -> None:
    from selenium.webdriver.common.keys import Keys

    text = _el(driver, "text")
    text.send_keys(Keys.CONTROL, "a")
    text.send_keys(Keys.DELETE)
    if value:
        _js(driver, "arguments[0].value = arguments[1];"
                    "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));", text, value)


def _choose(driver, fmt: str, stream: bool) -> None:
    from selenium.webdriver.support.ui import Select

    Select(_el(driver, "format")).select_by_value(fmt)
    box = _el(driver, "stream")
    if box.is_enabled() and box.is_selected() != stream:
        box.click()


def _wait_audio(driver, timeout: float = 60) -> None:
    _wait(driver, lambda d: _js(d, "const p = document.getElementById('player');"
                                   "return p.src.startsWith('blob:') && p.duration > 0.5;"),
          timeout, "no playable audio in #player")


def _downloaded(driver) -> tuple[str, str, bytes]:
    """The download link's file name, and the type and first bytes of the blob it points at."""
    info = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const a = document.getElementById('download');
        fetch(a.href).then(r => r.blob()).then(async b => {
            const head = Array.from(new Uint8Array(await b.slice(0, 4).arrayBuffer()));
            done({name: a.download, type: b.type, head, size: b.size});
        }).catch(e => done({error: String(e)}));
    """)
    assert "error" not in info, info
    assert info["size"] > 1000, info
    return info["name"], info["type"], bytes(info["head"])


def _synth_log(daemon, request_id: str) -> dict:
    path = daemon.workdir / "logs" / "synthesis.log"

    def find():
        if not path.is_file():
            return None
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("request_id") == request_id:
                return entry
        return None

    return daemon.wait_until(find, 10, what=f"synthesis.log line of {request_id}")


def _no_foreign_requests_nor_errors(driver, base_url: str, expected: tuple[str, ...] = ()) -> None:
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(base_url))
    urls = _js(driver, "return performance.getEntriesByType('resource').map(e => e.name)")
    assert urls and all(u.startswith((origin + "/", "blob:" + origin + "/")) for u in urls), urls
    severe = [entry["message"] for entry in driver.get_log("browser")
              if entry["level"] == "SEVERE" and not any(status in entry["message"] for status in expected)]
    assert not severe, severe


def test_webui_synthesizes_plays_downloads_and_clears_on_error(daemon, browser):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    driver = browser
    base_url = daemon.base_url.rstrip("/")
    _open(driver, base_url)
    el = functools.partial(_el, driver)
    assert re.search(r"\b(\d+)/\1 workers ready", el("status").text), el("status").text

    # The placeholder is a hint (muted, italic, not a sample sentence), and the field is really empty.
    text = el("text")
    assert text.get_attribute("value") == ""
    placeholder = text.get_attribute("placeholder")
    assert placeholder and placeholder != SENTENCE and "输入" in placeholder, placeholder
    style = _js(driver, "const s = getComputedStyle(arguments[0], '::placeholder'), t = getComputedStyle(arguments[0]);"
                        "return [s.fontStyle, s.color, t.color, s.opacity];", text)
    assert style[0] == "italic" and style[1] != style[2], style
    assert not el("key-field").is_displayed()  # no api_keys on this daemon

    # Ops panel from GET /summary: the worker with its state, restarts and (once sampled) RSS; queue and cache.
    first_row = "Array.from(document.querySelector('#ops-workers tbody tr')?.cells || []).map(c => c.textContent)"
    row = _wait(driver, lambda d: (r := _js(d, "return " + first_row)) and r[1] == "ready" and r[3].endswith(" MB")
                and r, 30, "ops panel never showed a ready worker with its RSS")
    assert row[0] == "w1" and row[1] == "ready" and row[2] == "0", row
    assert "queue 0" in el("ops-summary").text, el("ops-summary").text

    # Text with a live counter, emotion, speed.
    text.send_keys(SENTENCE)
    assert el("counter").text == f"{len(SENTENCE)} / 1000"
    Select(el("emotion")).select_by_value("happy")
    _js(driver, "arguments[0].value = '1.5';"
                "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));", el("speed"))
    assert el("speed-value").text == "1.5"

    # Whole-file synthesis in every format: playable, and the download is that format, named accordingly.
    _js(driver, """
        const b = document.getElementById('synthesize');
        window.__sawBusy = false;
        new MutationObserver(() => { if (b.disabled) window.__sawBusy = true; })
            .observe(b, {attributes: true, attributeFilter: ['disabled']});
    """)
    for fmt, (ext, magic) in MAGIC.items():
        _choose(driver, fmt, stream=False)
        assert el("stream").is_enabled() is (fmt == "wav")  # streaming is offered with WAV only
        previous = el("player").get_attribute("src")
        el("synthesize").click()
        _wait(driver, lambda d, old=previous: el("player").get_attribute("src") != old, 60, f"no new {fmt} result")
        _wait_audio(driver)
        assert el("synthesize").is_enabled() and not el("error").is_displayed()
        href = el("download").get_attribute("href")
        assert href == el("player").get_attribute("src") and href.startswith("blob:"), href
        assert el("download").is_displayed() and el("download-format").text == ext.upper()
        name, content_type, head = _downloaded(driver)
        assert re.fullmatch(rf"tts-[A-Za-z0-9._-]+\.{ext}", name), name
        assert content_type.startswith("audio/"), content_type
        assert head.startswith(magic) if magic else (head[:3] == b"ID3" or head[0] == 0xFF), (fmt, head)
        # It plays: the clock of the <audio> element moves.
        _wait(driver, lambda d: _js(d, "return document.getElementById('player').currentTime > 0.1"), 15,
              f"{fmt} audio never played")
    assert _js(driver, "return window.__sawBusy") is True

    _choose(driver, "wav", stream=False)
    el("synthesize").click()
    _wait(driver, lambda d: el("download").get_attribute("download").endswith(".wav"), 60, "no wav result")
    _wait_audio(driver)
    meta = el("meta").text
    match = re.search(r"Duration (\d+\.\d+) s", meta)
    assert match, meta
    played = _js(driver, "return document.getElementById('player').duration")
    assert abs(float(match.group(1)) - played) < 0.25, (meta, played)  # X-Audio-Duration matches the audio
    assert "Worker " in meta and "Synthesis " in meta, meta

    # An empty text, submitted with Ctrl+Enter, shows the server's error, and the old result is gone.
    old_href = el("download").get_attribute("href")
    _set_text(driver, "")
    assert el("counter").text == "0 / 1000"
    text.send_keys(Keys.CONTROL, Keys.ENTER)
    _wait(driver, lambda d: el("error").is_displayed(), 15, "#error never shown")
    error = el("error")
    assert error.get_attribute("role") == "alert"
    assert EMPTY_TEXT_ERROR in error.text and "400" in error.text, error.text
    assert not el("player").get_attribute("src"), el("player").get_attribute("src")
    assert not el("download").is_displayed()
    assert _js(driver, "return document.getElementById('meta').textContent") == ""
    revoked = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0]).then(() => done(false), () => done(true));
    """, old_href)
    assert revoked is True  # the old blob URL was released

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOT))
    # Expected console lines: the 400, and our probe of the revoked blob URL.
    _no_foreign_requests_nor_errors(driver, base_url, expected=("status of 400", old_href))


def test_webui_with_api_keys_asks_for_the_key_and_sends_it(start_daemon, browser):
    daemon = start_daemon({"server": {"api_keys": [API_KEY]}})
    driver = browser
    base_url = daemon.base_url.rstrip("/")
    _open(driver, base_url)
    el = functools.partial(_el, driver)

    # /summary says a key is needed: the field shows up, empty.
    _wait(driver, lambda d: el("key-field").is_displayed(), 15, "API-key field never shown")
    assert el("api-key").get_attribute("value") == ""
    assert el("api-key").get_attribute("type") == "password"

    # Without a key, and with a wrong one: 401, shown as such, the key field focused.
    _set_text(driver, SENTENCE)
    _choose(driver, "wav", stream=False)
    for key in ("", "sk-wrong"):
        _js(driver, "arguments[0].value = arguments[1];"
                    "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));", el("api-key"), key)
        _js(driver, "document.getElementById('error').hidden = true")
        el("synthesize").click()
        _wait(driver, lambda d: el("error").is_displayed(), 15, "no 401 shown")
        assert "401" in el("error").text and "API key" in el("error").text, el("error").text
        assert _js(driver, "return document.activeElement.id") == "api-key"
        assert not el("player").get_attribute("src")

    # The right key: synthesis works, the key is in sessionStorage (not localStorage) and survives a reload.
    el("api-key").clear()
    el("api-key").send_keys(API_KEY)
    el("synthesize").click()
    _wait_audio(driver)
    assert not el("error").is_displayed()
    assert _js(driver, "return sessionStorage.getItem('tts-ops.api-key')") == API_KEY
    assert _js(driver, "return Object.keys(localStorage).length") == 0
    name, _, head = _downloaded(driver)
    assert name.endswith(".wav") and head == b"RIFF", (name, head)

    _open(driver, base_url)
    assert el("key-field").is_displayed() and el("api-key").get_attribute("value") == API_KEY
    _set_text(driver, SENTENCE)
    _choose(driver, "wav", stream=True)  # the streamed request carries the key too
    el("synthesize").click()
    _wait(driver, lambda d: _js(d, "return window.ttsStream && window.ttsStream.done"), 60, "stream never finished")
    _wait_audio(driver)
    assert not el("error").is_displayed()
    # The ops panel is public: it works with api_keys set (no key needed for /summary).
    _wait(driver, lambda d: _js(d, "return document.querySelectorAll('#ops-workers tbody tr').length") == 1, 15,
          "ops panel empty")
    _no_foreign_requests_nor_errors(driver, base_url, expected=("status of 401",))


def test_webui_streams_a_long_text_playing_before_synthesis_ends(daemon, browser):
    driver = browser
    base_url = daemon.base_url.rstrip("/")
    _open(driver, base_url)
    el = functools.partial(_el, driver)

    _set_text(driver, LONG_TEXT)
    _choose(driver, "wav", stream=True)
    assert el("stream").is_selected() and el("stream").is_enabled()
    el("synthesize").click()
    stats = _wait(driver, lambda d: _js(d, "return window.ttsStream && window.ttsStream.done && window.ttsStream"),
                  120, "stream never finished")
    assert stats["pieces"] > 1 and stats["bytes"] > 0, stats
    # The order of events, not their timing (which depends on the machine): playback began before the last byte
    # arrived, and audio had really played (the Web Audio clock had run past the first piece's start) by then.
    assert stats["requestedAt"] <= stats["firstPlayAt"] < stats["doneAt"], stats
    assert stats["playedAtDone"] > 0, stats
    entry = _synth_log(daemon, stats["requestId"])
    assert entry["format"] == "pcm" and entry["cache"] == "MISS", entry

    # Afterwards the whole file is in the player and the download, as WAV, as long as the server says.
    _wait_audio(driver)
    name, content_type, head = _downloaded(driver)
    assert name.endswith(".wav") and content_type == "audio/wav" and head == b"RIFF", (name, content_type, head)
    duration = _js(driver, "return document.getElementById('player').duration")
    assert abs(duration - entry["audio_s"]) < 0.1, (duration, entry)
    assert re.search(r"Duration \d+\.\d+ s", el("meta").text), el("meta").text
    _no_foreign_requests_nor_errors(driver, base_url)
