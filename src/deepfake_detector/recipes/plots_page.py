"""An HTML page for `dvc plots show` that carries Vega itself, so the interactive plots render
without the network.

DVC's own page loads Vega, Vega-Lite and Vega-Embed from a CDN and shows only the PNGs offline.
DVC takes another page (`plots.html_template`, relative to `.dvc/`) with a `{plot_divs}`
placeholder for the plots; a page without `{scripts}` keeps DVC's CDN tags out. The three
libraries come bundled from vl-convert (the Vega project's own converter), written into the page
once, at set-up.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from deepfake_detector.core.atomic import write_text

# Relative to the .dvc directory, where DVC resolves `plots.html_template`.
TEMPLATE_NAME = "plots.html"

_PAGE = """<!DOCTYPE html>
<html>
<head>
  <meta charset="utf-8">
  {{refresh_tag}}
  <title>deepfake-detector: evaluation plots</title>
  <script>
{bundle}
  </script>
  <style>
    body {{ font-family: sans-serif; }}
    table {{ border-spacing: 15px; }}
    img {{ max-width: 100%; }}
  </style>
</head>
<body>
  {{plot_divs}}
</body>
</html>
"""


def vega_bundle() -> str:
    """Vega, Vega-Lite and Vega-Embed as one script that sets `window.vegaEmbed`."""
    import vl_convert

    return str(vl_convert.javascript_bundle(None))  # type: ignore[arg-type]  # None: the default


def plots_page(bundle: str) -> str:
    """The page DVC fills with its plots: the bundle inline, no CDN."""
    if "</script" in bundle.lower():
        raise ValueError("the Vega bundle closes its own <script> tag")
    return _PAGE.format(bundle=bundle)


def write_plots_template(root: Path) -> Path:
    """Write the offline page into `root`'s `.dvc/` (atomically), make it the page of this
    checkout's `dvc plots show` (`.dvc/config.local`, DVC's own CLI), and return its path."""
    target = root / ".dvc" / TEMPLATE_NAME
    write_text(target, plots_page(vega_bundle()))
    subprocess.run(
        [sys.executable, "-m", "dvc", "config", "--local", "plots.html_template", TEMPLATE_NAME],
        cwd=root, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return target
