"""Screenshot of `dvc plots show`'s page, rendered in headless Chromium (Debian's package).

    python docs/plots_screenshot.py dvc_plots/index.html docs/plots.png

Opens the page from the disk, waits until every interactive (Vega) plot has drawn, saves a PNG
and prints how many drew. The page must carry Vega itself (`deepfake plots_page`): the plots of
DVC's own page wait for a CDN.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

from screenshot import browser
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

DRAWN = ".vega-embed .chart-wrapper > .marks"  # the svg or canvas Vega draws a plot into


def screenshot(page: Path, out: Path, timeout: float = 60) -> int:
    """Save `page` to `out` once all of its Vega plots have drawn; return how many drew."""
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        try:
            driver.get(page.resolve().as_uri())
            expected = len(driver.find_elements(By.CSS_SELECTOR, ".vega-embed"))
            with contextlib.suppress(TimeoutException):  # the count below says how many drew
                WebDriverWait(driver, timeout).until(
                    lambda d: len(d.find_elements(By.CSS_SELECTOR, DRAWN)) >= expected
                )
            drawn = len(driver.find_elements(By.CSS_SELECTOR, DRAWN))
            driver.save_screenshot(str(out))
            return drawn
        finally:
            driver.quit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    drawn = screenshot(args.page, args.out)
    print(f"{drawn} Vega plots drawn")
    return 0 if drawn else 1


if __name__ == "__main__":
    sys.exit(main())
