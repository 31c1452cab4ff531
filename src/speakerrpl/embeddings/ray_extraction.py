"""Corpus-scale extraction on a Ray cluster: one model per actor, CPU or GPU actors.

:class:`RayEngine` plugs into :func:`~speakerrpl.embeddings.extract_embeddings` (``engine=``):
the driver hashes the files, looks them up in the embedding cache and writes every result
there and into the same ``.npz`` as the local path; only the decoding and the forward passes
run in the actors, each of which builds its own frontend from the frontend's name and keyword
arguments and calls :func:`~speakerrpl.embeddings.parallel.embed_files` on batches of paths.
Actors read the audio by path, so on several machines the corpus must sit at the same path on
each (a shared or replicated file system); see ``docs/scale-out.md``.

Needs the ``ray`` extra (``pip install 'speakerrpl[ray]'``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speakerrpl._optional import require
from speakerrpl.embeddings.parallel import WORKER_ENV, Outcome, embed_files, single_threaded
from speakerrpl.errors import FrontendError, InvalidInputError
from speakerrpl.frontends.base import Frontend

logger = logging.getLogger(__name__)

__all__ = ["RayEngine", "connect"]


def connect(address: str | None) -> Any:
    """Import ray and join the cluster at ``address`` (None or ``"local"``: start one here).

    An already initialised Ray (e.g. ``ray.init(num_cpus=2)`` by the caller) is reused.
    """
    ray = require("ray", extra="ray", purpose="--ray")
    if not ray.is_initialized():
        target = None if address in (None, "", "local") else address
        ray.init(address=target, log_to_driver=False, include_dashboard=False)
    return ray


class _Embedder:
    """A Ray actor holding one frontend (one thread on CPU)."""

    def __init__(self, name: str, kwargs: Mapping[str, Any]) -> None:
        os.environ.update(WORKER_ENV)
        from speakerrpl.frontends import get_frontend

        frontend = get_frontend(name, **dict(kwargs))
        self.frontend = single_threaded(frontend) if frontend.device == "cpu" else frontend

    def key(self) -> str:
        return self.frontend.cache_key()

    def embed(
        self, start: int, paths: list[str], min_duration: float, max_duration: float
    ) -> tuple[int, list[Outcome]]:
        return start, embed_files(self.frontend, paths, min_duration, max_duration)


@dataclass
class RayEngine:
    """Run extraction on Ray actors (pass as ``engine=`` to ``extract_embeddings``).

    Args:
        address: cluster address (``"auto"``, ``"ray://head:10001"``, ``"head:6379"``); None or
            ``"local"``: start a Ray instance on this machine.
        actors: number of actors (default: one per CPU of the cluster, or per GPU when
            ``gpus_per_actor`` is set).
        gpus_per_actor: GPUs each actor reserves (e.g. 0.25: four actors share a GPU); actors
            with GPUs run the frontend on ``cuda``.
        frontend_kwargs: keyword arguments the actors build the frontend with (the driver's
            frontend gives the name; ``device`` follows ``gpus_per_actor``).
    """

    address: str | None = None
    actors: int | None = None
    gpus_per_actor: float = 0.0
    frontend_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.actors is not None and self.actors < 1:
            raise InvalidInputError(f"actors must be >= 1, got {self.actors}")
        if self.gpus_per_actor < 0:
            raise InvalidInputError(f"gpus_per_actor must be >= 0, got {self.gpus_per_actor}")

    def _count(self, ray: Any, n_batches: int) -> int:
        if self.actors is not None:
            return min(self.actors, n_batches)
        resources = ray.cluster_resources()
        if self.gpus_per_actor > 0:
            slots = int(resources.get("GPU", 0) / self.gpus_per_actor)
        else:
            slots = int(resources.get("CPU", 1))
        return max(1, min(slots, n_batches))

    def __call__(
        self,
        frontend: Frontend,
        paths: Sequence[Path],
        batch_size: int,
        min_duration: float,
        max_duration: float,
        done: Callable[[int, list[Outcome]], None],
    ) -> None:
        """Embed ``paths``; ``done(start, outcomes)`` per finished batch (completion order)."""
        ray = connect(self.address)
        from ray.util import ActorPool

        kwargs = dict(self.frontend_kwargs)
        kwargs["device"] = "cuda" if self.gpus_per_actor > 0 else "cpu"
        batches = [
            (start, [str(p) for p in paths[start : start + batch_size]])
            for start in range(0, len(paths), batch_size)
        ]
        if not batches:
            return
        actor = ray.remote(num_cpus=1, num_gpus=self.gpus_per_actor)(_Embedder)
        count = self._count(ray, len(batches))
        logger.info("ray: %d actors for %d batches", count, len(batches))
        actors = [actor.remote(frontend.name, kwargs) for _ in range(count)]
        keys = set(ray.get([a.key.remote() for a in actors]))
        if keys != {frontend.cache_key()}:  # the cache must only get what its key says
            raise FrontendError(
                f"the Ray actors' {frontend.name} frontend is configured differently from this "
                f"process's (cache keys {sorted(keys)} vs {frontend.cache_key()}); pass the "
                "same frontend arguments"
            )
        pool = ActorPool(actors)
        work = pool.map_unordered(
            lambda a, b: a.embed.remote(b[0], b[1], min_duration, max_duration), batches
        )
        for start, outcomes in work:
            done(start, outcomes)
