"""How many worker processes extraction starts by default."""

from __future__ import annotations

import pytest

from speakerrpl.embeddings import extract_embeddings
from speakerrpl.embeddings.parallel import MIN_FILES_PER_WORKER, auto_workers
from speakerrpl.errors import InvalidInputError


@pytest.mark.parametrize(
    ("files", "cpus", "expected"),
    [(0, 2, 1), (MIN_FILES_PER_WORKER * 2 - 1, 2, 1), (MIN_FILES_PER_WORKER * 2, 2, 2),
     (10_000, 2, 2), (10_000, 1, 1), (10_000, 16, 16)],
)  # fmt: skip
def test_one_worker_per_cpu_when_each_gets_enough_files(
    files: int, cpus: int, expected: int
) -> None:
    assert auto_workers(files, cpus=cpus) == expected


def test_workers_must_be_positive() -> None:
    with pytest.raises(InvalidInputError, match="workers"):
        extract_embeddings([], "campplus", workers=0)
