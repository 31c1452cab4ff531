"""The /ui page in a real browser: Debian's headless Chromium driven by Selenium (no browser
download), against ``create_app`` served by uvicorn on 127.0.0.1. Tone voices and a spectral
frontend keep it quick; a screenshot of the final page is saved in the test's output folder.

Slow (starts a browser): run with ``pytest -m slow``; skipped when Chromium, chromedriver or
selenium are missing (``apt-get install chromium chromium-driver``, ``pip install selenium``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from live_server import LiveServer
from speakerrpl.service.app import create_app
from speakerrpl.service.engine import SpeakerEngine
from speakerrpl.service.settings import ServiceSettings
from toy_audio import ToneFrontend, tone

pytestmark = pytest.mark.slow
KEY = "ui-test-key-0123456"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (CHROMIUM and DRIVER):
        pytest.skip("chromium / chromium-driver are not installed (Debian packages)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 "--window-size=1000,1200"):  # fmt: skip
        options.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("ui")
    front = ToneFrontend()
    pool = front.embed([tone(f) for f in (500, 700, 900, 1500, 1800, 2100)])
    settings = ServiceSettings(method="cosine", min_enroll_speech=0, api_key=KEY)
    engine = SpeakerEngine(root / "r.db", settings, frontend=front,
                           pool=(pool, np.array([f"p{i}" for i in range(6)])))  # fmt: skip
    engine.enroll("alice", [tone(300), tone(305)])
    engine.enroll("bob", [tone(1200), tone(1210)])
    for name, hz in (("carol1", 2600), ("carol2", 2610), ("carol3", 2620), ("alice9", 302)):
        sf.write(root / f"{name}.wav", tone(hz), 16000)
    with LiveServer(create_app(engine)) as url:
        yield url, root


def _wait_text(driver, element_id: str, text: str, timeout: float = 20) -> str:  # type: ignore[no-untyped-def]
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, timeout).until(
            lambda d: text in d.find_element("id", element_id).text
        )
    except Exception as exc:
        seen = driver.find_element("id", "status").text
        raise AssertionError(f"{text!r} not in #{element_id}; status: {seen!r}") from exc
    return str(driver.find_element("id", element_id).text)


def test_household_page_enroll_identify_record_remove(browser, site, tmp_path: Path) -> None:
    driver, (url, root) = browser, site
    driver.get(url + "/ui")
    assert "speakerrpl" in driver.title
    driver.find_element("id", "refresh").click()  # no key yet: the API refuses
    assert "401" in _wait_text(driver, "status", "401")

    driver.find_element("id", "key").send_keys(KEY)
    driver.find_element("id", "save-key").click()
    people = _wait_text(driver, "people", "bob")
    assert "alice 2" in people and "bob 2" in people

    driver.find_element("id", "enroll-name").send_keys("carol")
    files = "\n".join(str(root / f"carol{i}.wav") for i in (1, 2, 3))
    driver.find_element("id", "enroll-files").send_keys(files)
    driver.find_element("id", "enroll").click()
    assert "enrolled carol" in _wait_text(driver, "status", "enrolled carol", timeout=60)
    assert "carol 3" in _wait_text(driver, "people", "carol")

    driver.find_element("id", "identify-file").send_keys(str(root / "alice9.wav"))
    driver.find_element("id", "identify").click()
    decision = _wait_text(driver, "decision", "alice")
    assert "confidence" in decision and "threshold" in decision

    driver.execute_script("document.getElementById('decision').textContent = ''")
    driver.find_element("id", "identify-record").click()  # Chromium's fake microphone (a beep)
    _wait_text(driver, "status", "recording 4 s")
    assert "threshold" in _wait_text(driver, "decision", "threshold", timeout=30)
    assert driver.find_element("id", "status").text == "identified"

    row = driver.find_element("css selector", 'tr[data-name="carol"] button.remove')
    row.click()
    driver.switch_to.alert.accept()
    _wait_text(driver, "status", "removed carol")
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(lambda d: "carol" not in d.find_element("id", "people").text)
    shot = tmp_path / "ui.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
