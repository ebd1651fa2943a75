"""The studio in a real browser (headless Chromium driven by Selenium), as a musician uses it:
upload a WAV, vary it into four takes, download one, then a wrong target and a corrupt upload
give the CLI's one line on the page, the page keeps working, and a typed prompt generates. Skips where Chromium is not
installed, except under CI (``CI=true``), where that is a failure. ``DIFFUSIONKIT_SCREENSHOT=1``
also writes the README's screenshot, docs/studio.png (otherwise nothing outside pytest's folders)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import soundfile as sf

pytest.importorskip("gradio", reason="the studio's optional extra (gradio) is not installed")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from studio_model import RATE, drum_wav, tiny_audio_bundle  # noqa: E402

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]  # the repository
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1900"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        reason = "the studio's browser test needs Debian's chromium and chromium-driver (apt-get install chromium " \
                 "chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: {reason}")
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    for flag in [*BROWSER_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """``diffusionkit studio`` on a tiny model and a free port, as a user starts it."""
    folder = tmp_path_factory.mktemp("studio")
    bundle = tiny_audio_bundle(folder / "run")
    port, out = free_port(), folder / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "diffusionkit.cli", "studio", f"ckpt={bundle}", f"port={port}",
                                f"out={out}", "max_items=8", f"runs={folder}"], cwd=folder, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"the studio stopped: {process.stdout.read()}")
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("the studio did not answer within 120 s")
    yield url, out, folder
    process.terminate()
    process.wait(timeout=30)


def status(driver) -> str:
    return driver.find_element(By.CSS_SELECTOR, "#status textarea").get_attribute("value")


def run(driver, starts: str, timeout: float = 120) -> str:
    """Click Run and wait for a new status line that starts with ``starts`` (or is an error)."""
    before = status(driver)
    driver.find_element(By.ID, "run").click()
    WebDriverWait(driver, timeout).until(
        lambda d: status(d) != before and (status(d).startswith(starts) or "error" in status(d)))
    return status(driver)


def upload(driver, path: Path) -> None:
    """Clear the input field if it holds a file, then drop ``path`` on it."""
    clear = driver.find_elements(By.CSS_SELECTOR, "#input-audio button[aria-label='Clear']")
    if clear:
        clear[0].click()
    field = WebDriverWait(driver, 20).until(lambda d: d.find_element(By.CSS_SELECTOR, "#input-audio input[type=file]"))
    field.send_keys(str(path))
    WebDriverWait(driver, 30).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#input-audio input[type=file]"))


def choose_operation(driver, name: str) -> None:
    driver.find_element(By.XPATH, f"//*[@id='operation']//label[.//*[normalize-space(text())='{name}']]").click()
    time.sleep(0.5)


def set_number(driver, field: str, value: float) -> None:
    box = driver.find_element(By.CSS_SELECTOR, f"#field-{field} input[type=number]")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value), Keys.TAB)


def players(driver) -> list:
    return [p for p in driver.find_elements(By.CSS_SELECTOR, "[id^='player-'][id$='-audio']") if p.is_displayed()]


def test_a_musician_varies_a_sample_and_bad_input_is_one_line(browser, studio, tmp_path):
    url, out, folder = studio
    sample = drum_wav(tmp_path / "my_kick.wav")
    corrupt = tmp_path / "broken.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40)
    browser.get(url)
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.ID, "run"))

    # vary n=4: four players
    upload(browser, sample)
    set_number(browser, "n", 4)
    assert run(browser, "take #1").startswith("take #1: 4 vary result(s)")
    WebDriverWait(browser, 30).until(lambda d: len(players(d)) == 4)
    assert len(players(browser)) == 4

    # download one take: a WAV at the model's rate
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#take-files a")
             if (a.get_attribute("href") or "").endswith(".wav")]
    assert len(links) == 4
    downloaded = tmp_path / "download.wav"
    downloaded.write_bytes(urllib.request.urlopen(links[0], timeout=30).read())
    info = sf.info(downloaded)
    assert (info.samplerate, info.frames, info.channels) == (RATE, 16128, 1)
    recipe = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#take-files a")
              if (a.get_attribute("href") or "").endswith("recipe.yaml")]
    assert b"studio_operation: vary" in urllib.request.urlopen(recipe[0], timeout=30).read()

    # convert to an unknown target: the CLI's line
    choose_operation(browser, "convert")
    target = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, "#field-target input"))
    target.send_keys(Keys.CONTROL, "a")
    target.send_keys("banjo", Keys.ENTER)
    line = run(browser, "diffusionkit convert: error")
    assert line.startswith("diffusionkit convert: error: unknown label 'banjo'; this model's classes: kick, snare")
    assert "\n" not in line

    # a corrupt upload: the CLI's line
    choose_operation(browser, "vary")
    upload(browser, corrupt)
    line = run(browser, "diffusionkit vary: error")
    assert line.startswith("diffusionkit vary: error: cannot read audio '") and "broken.wav" in line
    assert "\n" not in line

    # the page still works
    upload(browser, sample)
    set_number(browser, "n", 4)
    assert run(browser, "take #2").startswith("take #2: 4 vary result(s)")
    WebDriverWait(browser, 30).until(lambda d: len(players(d)) == 4)
    time.sleep(1.0)  # let the players draw their waveforms
    shot = tmp_path / "studio.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("DIFFUSIONKIT_SCREENSHOT") == "1":
        shutil.copy(shot, ROOT / "docs" / "studio.png")

    # generate from a prompt typed in the prompt box: the recipe records it
    choose_operation(browser, "generate")
    box = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.CSS_SELECTOR, "#field-prompt textarea"))
    box.send_keys("a short, bright snare")
    set_number(browser, "n", 2)
    assert run(browser, "take #3").startswith("take #3: 2 generate result(s)")
    recipe = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#take-files a")
              if (a.get_attribute("href") or "").endswith("recipe.yaml")]
    assert b"prompt: a short, bright snare" in urllib.request.urlopen(recipe[0], timeout=30).read()

    # every file the studio wrote is inside its output folder
    written = [p for p in folder.rglob("*") if p.is_file() and not p.is_relative_to(out)]
    assert sorted(p.relative_to(folder).as_posix() for p in written) == ["run/model.safetensors"]
    assert len(list((out / "takes").iterdir())) == 3
