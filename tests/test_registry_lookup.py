"""Registry lookups on the light install: SQLite stores read directly, others need MLflow."""

from __future__ import annotations

import sys

import pytest

from deepfake_detector.core.errors import UserError
from deepfake_detector.inference.registry_lookup import resolve


def test_a_server_store_without_mlflow_installed_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as in `pip install deepfake-detector`
    with pytest.raises(UserError, match=r"deepfake-detector\[registry\]"):
        resolve("models:/deepfake-detector@champion", "http://127.0.0.1:9/")
