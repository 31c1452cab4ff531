"""The evaluation grid on Ray: one task per (method, split) unit.

:func:`ray_unit_runner` returns a :data:`~speakerrpl.evaluation.experiments.UnitRunner` for
:func:`~speakerrpl.evaluation.experiments.run_evaluation` (``runner=``). The inputs
(embeddings, pool, protocol) are put in the object store once; each task runs the same
:func:`~speakerrpl.evaluation.units.fit_and_score` as the local path with the same seed, and
the driver writes each unit file under ``OUT/units/`` as soon as its task finishes, so an
interrupted run resumes exactly as a local one does (locally or on Ray).

Needs the ``ray`` extra (``pip install 'speakerrpl[ray]'``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

from speakerrpl.embeddings.parallel import WORKER_ENV
from speakerrpl.embeddings.ray_extraction import connect
from speakerrpl.errors import InvalidInputError
from speakerrpl.evaluation.units import EvalInputs, Unit, fit_and_score

logger = logging.getLogger(__name__)

__all__ = ["ray_unit_runner"]


def _fit_unit(
    unit: Unit, fold: int, inputs: EvalInputs, seed: int, far: float, params: dict[str, Any]
) -> tuple[Unit, int, dict[str, Any], dict[str, Any]]:
    os.environ.update(WORKER_ENV)
    import torch

    torch.set_num_threads(1)
    result, arrays = fit_and_score(unit, inputs, fold, seed, far, params)
    return unit, fold, result, arrays


def ray_unit_runner(
    address: str | None = None, cpus_per_task: float = 1.0, gpus_per_task: float = 0.0
) -> Any:
    """A unit runner that fits every (method, split) unit as its own Ray task.

    Args:
        address: cluster address (None or ``"local"``: start Ray here; an initialised Ray
            is reused).
        cpus_per_task: CPUs each fit reserves (each fit runs one torch thread).
        gpus_per_task: GPUs each fit reserves (pass ``device="cuda"`` in the identifier
            parameters to train on them).
    """
    if cpus_per_task <= 0 or gpus_per_task < 0:
        raise InvalidInputError(
            f"need cpus_per_task > 0 and gpus_per_task >= 0, got {cpus_per_task}, {gpus_per_task}"
        )

    def run(
        work: list[tuple[Unit, int]], inputs: EvalInputs, config: Any
    ) -> Iterator[tuple[Unit, int, dict[str, Any], dict[str, Any]]]:
        if not work:
            return
        ray = connect(address)
        task = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus_per_task)(_fit_unit)
        shared = ray.put(inputs)
        params = dict(config.identifier_params)
        pending = [
            task.remote(unit, f, shared, config.random_state + f, config.far, params)
            for unit, f in work
        ]
        logger.info("ray: %d unit tasks submitted", len(pending))
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            yield ray.get(finished[0])

    return run
