"""Training's distribution strategy: one device as before here; mirrored over several."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deepfake_detector.recipes.training import strategy_devices, training_strategy


def test_without_gpus_training_runs_on_one_device_with_the_default_strategy() -> None:
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("this machine has a GPU: the one-device CPU path is tested on CPU machines")
    strategy = training_strategy()
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert strategy_devices(strategy) == ("/device:CPU:0",)


MIRRORED = textwrap.dedent(
    """
    import json, sys
    import numpy as np, pandas as pd, tensorflow as tf
    from PIL import Image
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from deepfake_detector.core.config import TrainParams
    from deepfake_detector.recipes.training import fit_detector, training_strategy

    rng = np.random.default_rng(0)
    rows = []
    for i in range(16):
        path = f"{sys.argv[1]}/{i}.jpg"
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)
        rows.append({"path": path, "y": i % 2})
    table = pd.DataFrame(rows)
    cfg = TrainParams(image_size=32, batch_size=8, head_epochs=1, epochs=1, patience=1,
                      base_weights="none", fine_tune_layers=2)
    strategy = training_strategy([d.name for d in tf.config.list_logical_devices("CPU")])
    fitted = fit_detector(table, table, cfg, strategy)
    p = fitted.model.predict(np.zeros((2, 32, 32, 3), np.float32), verbose=0)
    print(json.dumps({"devices": list(fitted.devices), "epochs": len(fitted.history),
                      "replicas": strategy.num_replicas_in_sync, "shape": list(p.shape)}))
    """
)


@pytest.mark.slow
def test_two_devices_train_one_mirrored_model(tmp_path: Path) -> None:
    """Two logical CPUs stand in for two GPUs: the same recipe trains with a replica on each."""
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["replicas"] == 2 and len(answer["devices"]) == 2, answer
    assert answer["epochs"] == 2 and answer["shape"] == [2, 1], answer
