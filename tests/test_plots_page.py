"""`dvc plots show` offline: the page `deepfake plots_page` writes carries Vega, so the
evaluation's interactive plots draw without the network (DVC's own page waits for a CDN)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_env
from test_entry_errors import deepfake

from deepfake_detector.recipes.plots_page import plots_page


@pytest.fixture(scope="module")
def plots_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DVC project with the repository's dvc.yaml, params and evaluation tables."""
    project = tmp_path_factory.mktemp("plots")
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "models/evaluation", project / "models/evaluation")
    env = run_env(project)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True, env=env)
    subprocess.run(["dvc", "init", "-q"], cwd=project, check=True, env=env)
    return project


def vega_plots_declared() -> int:
    return len(yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"])


def test_the_page_carries_vega_and_no_cdn() -> None:
    page = plots_page("window.vegaEmbed = function () {};")
    assert "{plot_divs}" in page and "{scripts}" not in page  # DVC's CDN tags stay out
    with pytest.raises(ValueError, match="script"):
        plots_page("a bundle that ends </script><script>")


def test_dvc_plots_show_draws_every_plot_offline(plots_project: Path) -> None:
    done = deepfake(["plots_page"], plots_project)
    assert done.returncode == 0, done.stderr
    assert (plots_project / ".dvc/plots.html").stat().st_size > 500_000  # Vega inside
    env = run_env(plots_project)
    shown = subprocess.run(
        ["dvc", "plots", "show", "-o", "out"], cwd=plots_project, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    html = (plots_project / "out/index.html").read_text()
    assert "cdn.jsdelivr" not in html and "<script src=" not in html
    assert "window.vegaEmbed" in html
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("drawing the page needs Debian's chromium and chromium-driver (`make browser`)")
    drawn = subprocess.run(
        [sys.executable, str(REPO / "docs/plots_screenshot.py"), "out/index.html", "plots.png"],
        cwd=plots_project, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    assert drawn.stdout.strip() == f"{vega_plots_declared()} Vega plots drawn"


def test_plots_page_outside_a_dvc_project_says_so(tmp_path: Path) -> None:
    done = deepfake(["plots_page"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: not a DVC project here (no .dvc/): run it in the project's root"
    ]
