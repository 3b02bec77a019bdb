"""Screenshot of the running app with a result, taken in headless Chromium (Debian's package).

    python docs/screenshot.py http://127.0.0.1:7860 path/to/image.jpg docs/app.png \
        [--card docs/model_card.png]

Uploads the image in the Image tab, presses "Analyse image", waits for the verdict and saves a
PNG of the page. Prints the verdict line it saw (the tests check it). With `--card`, also opens
the "Model card" tab and saves a PNG of it.
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


def screenshot(
    url: str, image: Path, out: Path, card: Path | None = None, timeout: float = 120
) -> str:
    """Analyse `image` in the app at `url`; save the page to `out` (and the model card tab to
    `card`); return the verdict text."""
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        try:
            driver.get(url)
            wait = WebDriverWait(driver, timeout)
            upload = wait.until(
                ec.presence_of_element_located((By.CSS_SELECTOR, "input[type=file]"))
            )
            upload.send_keys(str(image.resolve()))
            button = wait.until(ec.element_to_be_clickable(
                (By.XPATH, "//button[contains(., 'Analyse image')]")))  # fmt: skip
            time.sleep(1)  # let the upload finish before asking for the analysis
            button.click()
            heading = wait.until(lambda d: next(
                (h for h in d.find_elements(By.TAG_NAME, "h3")
                 if any(v in h.text for v in VERDICTS)), None))  # fmt: skip
            verdict = heading.text
            time.sleep(2)  # the annotated picture and heat maps render after the text
            out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(out))
            if card is not None:
                tab = wait.until(ec.element_to_be_clickable(
                    (By.XPATH, "//button[@role='tab' and contains(., 'Model card')]")))  # fmt: skip
                tab.click()
                wait.until(lambda d: any("Intended use" in h.text
                                         for h in d.find_elements(By.TAG_NAME, "h2")))  # fmt: skip
                time.sleep(1)
                driver.execute_script("window.scrollTo(0, 0)")
                driver.save_screenshot(str(card))
            return verdict
        finally:
            driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("image", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--card", type=Path, help="also a PNG of the Model card tab")
    args = parser.parse_args()
    print(screenshot(args.url, args.image, args.out, args.card))
    sys.exit(0)


if __name__ == "__main__":
    main()
