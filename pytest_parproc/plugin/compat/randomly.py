"""pytest-randomly: one seed for the whole run, in every worker and start mode (checked against
pytest-randomly 5.1).

pytest-randomly resolves the seed in the main process (``--randomly-seed``, ``last`` from the
cache, or a new one) and, under xdist, hands it to each worker in ``workerinput`` through its
``pytest_configure_node``; a worker's ``pytest_configure`` takes it from there. A forked worker
has the main process's configuration already; a worker that collects gets the same key
(``compat.xdist``), so it reseeds with the printed seed.
"""

from __future__ import annotations

from typing import Any

import pytest


def worker_input(config: pytest.Config) -> dict[str, Any]:
    if not config.pluginmanager.has_plugin("randomly"):
        return {}
    seed = getattr(config.option, "randomly_seed", None)
    return {} if seed is None else {"randomly_seed": seed}
