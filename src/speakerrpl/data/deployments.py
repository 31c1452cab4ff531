"""Protocols that match deployments: households and offices, development and report folds.

A *household* enrolls K in {2, 4, 8} people from 1-5 clips each and hears visitors; an
*office* enrolls K in {20, 50}. Each deployment gets two independent sets of seeded folds:
``dev`` folds for choosing hyperparameters and ``report`` folds, drawn from another seed
stream, for the reported figures (mean and std over report folds). A household fold is
:data:`HOUSEHOLDS_PER_FOLD` independent households whose metrics are averaged: one household
of four differs from the next by far more than one method differs from another, so a fold of
one household would measure which people it drew (``docs/corpus.md``, "The std goal"). Both
are ordinary
:class:`~speakerrpl.data.protocols.Protocol` objects whose ``params`` carry ``deployment`` and
``role``; :func:`make_suite` draws every one of them over a corpus, :func:`save_suite` writes
them as ``<name>-k<K>-e<E>-<role>.json``.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from speakerrpl.data.protocols import Protocol, make_corpus_protocol, save_protocol
from speakerrpl.errors import ProtocolError

__all__ = [
    "DEPLOYMENTS",
    "ROLES",
    "Deployment",
    "deployment_protocol",
    "make_suite",
    "save_suite",
]

ROLES = ("dev", "report")
HOUSEHOLD_SIZES = (2, 4, 8)
HOUSEHOLD_ENROLL = (1, 2, 3, 4, 5)
OFFICE_SIZES = (20, 50)
#: Households drawn per household fold (chosen on development folds, ``docs/corpus.md``).
HOUSEHOLDS_PER_FOLD = 10


@dataclass(frozen=True)
class Deployment:
    """One deployment shape: K enrolled people, clips each, unknown speakers per fold, folds.

    Attributes:
        name: ``household`` or ``office``.
        n_targets: K.
        n_enroll: enrollment clips per person.
        n_unknowns: unknown speakers per fold (visitors, other staff), capped by the corpus.
        dev_folds: development folds.
        report_folds: report folds.
        draws_per_fold: independent draws (households, offices) per fold; the protocol holds
            ``folds x draws_per_fold`` draws and a fold's metrics are the mean over its draws
            (:func:`~speakerrpl.data.protocols.draws_per_fold`).

    Example:
        >>> Deployment("household", 4, 3).stem
        'household-k4-e3'
    """

    name: str
    n_targets: int
    n_enroll: int
    n_unknowns: int = 20
    dev_folds: int = 5
    report_folds: int = 10
    draws_per_fold: int = 1

    @property
    def stem(self) -> str:
        """File-name stem: ``<name>-k<K>-e<E>``."""
        return f"{self.name}-k{self.n_targets}-e{self.n_enroll}"

    def folds(self, role: str) -> int:
        """Folds of ``role`` (``dev`` or ``report``)."""
        _check_role(role)
        return self.dev_folds if role == "dev" else self.report_folds


DEPLOYMENTS: tuple[Deployment, ...] = (
    *(
        Deployment("household", k, e, draws_per_fold=HOUSEHOLDS_PER_FOLD)
        for k in HOUSEHOLD_SIZES
        for e in HOUSEHOLD_ENROLL
    ),
    *(Deployment("office", k, 3, 50, dev_folds=3, report_folds=5) for k in OFFICE_SIZES),
)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ProtocolError(f"role must be one of {ROLES}, got {role!r}")


def role_seed(seed: int, deployment: Deployment, role: str) -> int:
    """The fold seed of one (deployment, role): independent streams for dev and report.

    Example:
        >>> d = Deployment("household", 4, 3)
        >>> role_seed(0, d, "dev") != role_seed(0, d, "report")
        True
    """
    _check_role(role)
    return seed * 1_000_003 + zlib.crc32(f"{deployment.stem}|{role}".encode())


def deployment_protocol(
    utt_ids: Sequence[str],
    speakers: Sequence[str],
    deployment: Deployment,
    role: str,
    *,
    seed: int = 0,
    voices: Mapping[str, Mapping[str, str]] | None = None,
    conditions: str | Sequence[str] = "auto",
    exclude_speakers: Collection[str] = (),
) -> Protocol:
    """The ``role`` folds of one deployment over a corpus (or its embedding set).

    The protocol holds ``folds x draws_per_fold`` draws, consecutive draws forming one fold
    (``params["draws_per_fold"]``). Unknown speakers per draw are capped at the speakers left
    after the targets.

    Raises:
        ProtocolError: a bad role, or too few speakers / enrollment clips.

    Example:
        >>> ids = [f"s{s}-{i}" for s in range(8) for i in range(4)]
        >>> p = deployment_protocol(ids, [u[:2] for u in ids], Deployment("household", 2, 2),
        ...                         "report")
        >>> p.params["role"], p.params["deployment"], len(p.folds), len(p.folds[0].targets)
        ('report', 'household', 10, 2)
    """
    _check_role(role)
    n_speakers = len(set(speakers) - set(exclude_speakers))
    if deployment.draws_per_fold < 1:
        raise ProtocolError(f"draws_per_fold must be >= 1, got {deployment.draws_per_fold}")
    unknowns = min(deployment.n_unknowns, n_speakers - deployment.n_targets)
    if unknowns < 1:
        raise ProtocolError(
            f"{deployment.stem} needs more than {deployment.n_targets} speakers, have {n_speakers}"
        )
    protocol = make_corpus_protocol(
        utt_ids,
        speakers,
        n_targets=deployment.n_targets,
        n_enroll=deployment.n_enroll,
        n_unknowns=unknowns,
        n_folds=deployment.folds(role) * deployment.draws_per_fold,
        seed=role_seed(seed, deployment, role),
        voices=voices,
        conditions=conditions,
        exclude_speakers=exclude_speakers,
    )
    params = {
        **protocol.params,
        "deployment": deployment.name,
        "role": role,
        "base_seed": seed,
        "draws_per_fold": deployment.draws_per_fold,
    }
    return Protocol(protocol.folds, protocol.conditions, params)


def make_suite(
    utt_ids: Sequence[str],
    speakers: Sequence[str],
    *,
    deployments: Sequence[Deployment] = DEPLOYMENTS,
    roles: Sequence[str] = ROLES,
    seed: int = 0,
    voices: Mapping[str, Mapping[str, str]] | None = None,
    conditions: str | Sequence[str] = "auto",
) -> dict[str, Protocol]:
    """Every (deployment, role) protocol, keyed ``<stem>-<role>``; sorted keys.

    Example:
        >>> ids = [f"s{s}-{i}" for s in range(12) for i in range(7)]
        >>> suite = make_suite(ids, [u.split("-")[0] for u in ids],
        ...                    deployments=[Deployment("household", 4, 5)])
        >>> sorted(suite)
        ['household-k4-e5-dev', 'household-k4-e5-report']
    """
    suite = {}
    for deployment in deployments:
        for role in roles:
            suite[f"{deployment.stem}-{role}"] = deployment_protocol(
                utt_ids, speakers, deployment, role, seed=seed, voices=voices,
                conditions=conditions,
            )  # fmt: skip
    return dict(sorted(suite.items()))


def save_suite(suite: Mapping[str, Protocol], out_dir: str | Path) -> dict[str, str]:
    """Write each protocol as ``out_dir/<key>.json``; return key -> content hash.

    Example:
        >>> import tempfile
        >>> from speakerrpl.data.protocols import Fold
        >>> p = Protocol([Fold(["a"], {"a": ["a1"]}, ["a2"], ["b1"])])
        >>> len(save_suite({"x-dev": p}, tempfile.mkdtemp())["x-dev"])
        64
    """
    return {key: save_protocol(p, Path(out_dir) / f"{key}.json") for key, p in suite.items()}
