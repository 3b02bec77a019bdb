"""Screenshot of the running app with a result, taken in headless Chromium (Debian's package).

    python docs/screenshot.py http://127.0.0.1:7860 path/to/image.jpg docs/app.png \
        [--card docs/model_card.png] [--video path/to/clip.mp4 docs/app_video.png]

Uploads the image in the Image tab, presses "Analyse image", waits for the verdict and saves a
PNG of the page. Prints the verdict line it saw (the tests check it). With `--card`, also opens
the "Model card" tab and saves a PNG of it; with `--video`, analyses the clip in the Video tab
and saves that page too (its verdict line printed second).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# The file input of the tab on show: the inputs themselves are hidden, their drop zones are not.
VISIBLE_UPLOAD = """return [...document.querySelectorAll('input[type=file]')]
    .find(i => i.parentElement && i.parentElement.offsetParent !== null) || null;"""
VERDICTS = ("Verdict:", "No face found", "Cannot analyse")


def browser(profile: str) -> webdriver.Chrome:
    """Headless Chromium that stays off the network except for the app."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-sync",
                 "--disable-component-update", "--window-size=1400,1500",
                 f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def analyse(driver: webdriver.Chrome, wait: WebDriverWait, path: Path, what: str) -> str:
    """Upload `path` in the visible tab, press "Analyse <what>", return the verdict heading."""
    upload = wait.until(lambda d: d.execute_script(VISIBLE_UPLOAD))
    upload.send_keys(str(path.resolve()))
    button = wait.until(ec.element_to_be_clickable(
        (By.XPATH, f"//button[contains(., 'Analyse {what}')]")))  # fmt: skip
    time.sleep(1)  # let the upload finish before asking for the analysis
    button.click()
    heading = wait.until(lambda d: next(
        (h for h in d.find_elements(By.TAG_NAME, "h3")
         if h.is_displayed() and any(v in h.text for v in VERDICTS)), None))  # fmt: skip
    time.sleep(2)  # the annotated picture and heat maps render after the text
    return str(heading.text)


def open_tab(driver: webdriver.Chrome, wait: WebDriverWait, name: str) -> None:
    wait.until(ec.element_to_be_clickable(
        (By.XPATH, f"//button[@role='tab' and contains(., '{name}')]"))).click()  # fmt: skip
    time.sleep(1)


def screenshot(
    url: str,
    image: Path,
    out: Path,
    card: Path | None = None,
    video: tuple[Path, Path] | None = None,
    timeout: float = 180,
) -> list[str]:
    """Analyse `image` in the app at `url`; save the page to `out` (the model card tab to
    `card`; the Video tab with `video`'s clip analysed to its second path); return the
    verdict texts."""
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        try:
            driver.get(url)
            wait = WebDriverWait(driver, timeout)
            verdicts = [analyse(driver, wait, image, "image")]
            out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(out))
            if card is not None:
                open_tab(driver, wait, "Model card")
                wait.until(lambda d: any("Intended use" in h.text
                                         for h in d.find_elements(By.TAG_NAME, "h2")))  # fmt: skip
                driver.execute_script("window.scrollTo(0, 0)")
                driver.save_screenshot(str(card))
            if video is not None:
                clip, video_out = video
                open_tab(driver, wait, "Video")
                verdicts.append(analyse(driver, wait, clip, "video"))
                driver.execute_script("window.scrollTo(0, 0)")
                driver.save_screenshot(str(video_out))
            return verdicts
        finally:
            driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("image", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--card", type=Path, help="also a PNG of the Model card tab")
    parser.add_argument(
        "--video", type=Path, nargs=2, metavar=("CLIP", "OUT"), help="also a clip's answer"
    )
    args = parser.parse_args()
    video = tuple(args.video) if args.video else None
    print("\n".join(screenshot(args.url, args.image, args.out, args.card, video)))
    sys.exit(0)


if __name__ == "__main__":
    main()
