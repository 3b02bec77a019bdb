"""Where the flow's tasks run: threads here, or a Dask cluster (local or at an address)."""

from __future__ import annotations

import os

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from deepfake_detector.core.config import FlowParams
from deepfake_detector.core.errors import UserError


def task_runner_for(settings: FlowParams) -> TaskRunner:
    """The task runner params ask for: threads here, or Dask (a local cluster or a scheduler).

    A local Dask cluster has `workers` processes of one thread each, bound to 127.0.0.1 with no
    dashboard, the machine's cores shared among them; each process imports TensorFlow and loads
    MTCNN once, for all the videos it gets.
    With `dask_address` the tasks go to an existing cluster, whose workers must see this
    checkout's files at the same path and have this package installed.
    """
    if settings.task_runner == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError:
            raise UserError(
                "flow.task_runner: dask needs Dask, which the demo install leaves out: "
                "pip install -e '.[train,cluster]' (or make setup-dev)"
            ) from None

        if settings.dask_address:
            return DaskTaskRunner(address=settings.dask_address)
        # The machine's cores shared out: one TensorFlow per worker would otherwise take them
        # all, and the workers would fight over them.
        threads = str(max(1, (os.cpu_count() or 1) // settings.workers))
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": settings.workers,
                "threads_per_worker": 1,
                "processes": True,
                "host": "127.0.0.1",
                "dashboard_address": None,
                "env": {
                    "TF_NUM_INTRAOP_THREADS": threads,
                    "TF_NUM_INTEROP_THREADS": "1",
                    "OMP_NUM_THREADS": threads,
                },
            }
        )
    return ThreadPoolTaskRunner(max_workers=settings.workers)
