"""Centroid-cosine baseline per test condition: is the corpus neither trivial nor hopeless?

For each fold of a protocol, targets are enrolled by the mean of their L2-normalised clean
enrollment embeddings; each test utterance (in each condition) is scored by its cosine to every
centroid. EER is over identification trials (``speakerrpl.metrics``), accuracy is closed-set
over the targets' test utterances. Figures are averaged over folds. When the corpus holds
condition copies, the test utterances are the conditioned ones and enrollment comes from the
other clean utterances (:func:`speakerrpl.data.protocols.protocol_candidates`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from speakerrpl import metrics
from speakerrpl.data.condition_ids import (
    available_conditions,
    clean_utterances,
    condition_utt_id,
)
from speakerrpl.data.deployments import DEPLOYMENTS, Deployment, deployment_protocol
from speakerrpl.data.protocols import (
    Protocol,
    draws_per_fold,
    make_protocol,
    protocol_candidates,
    validate_protocol,
)
from speakerrpl.embeddings import EmbeddingSet
from speakerrpl.errors import ProtocolError
from speakerrpl.evaluation.report import average_draws, summarize
from speakerrpl.vectors import centroids, cosine_scores

__all__ = [
    "corpus_baseline",
    "cosine_baseline",
    "deployment_baseline",
    "embed_and_score_corpus",
    "near_duplicates",
]


def cosine_baseline(
    embeddings: np.ndarray,
    utt_ids: np.ndarray,
    speakers: np.ndarray,
    protocol: Protocol,
) -> dict[str, dict[str, float]]:
    """Per condition: mean (over folds) open-set ``eer``, its ``eer_std`` and ``accuracy``.

    A fold of several draws (:func:`~speakerrpl.data.protocols.draws_per_fold`) counts as the
    mean over its draws.

    Args:
        embeddings: (N, D) embeddings of every clean utterance and condition copy.
        utt_ids: (N,) their ids.
        speakers: (N,) their speakers.
        protocol: folds over clean ids plus the conditions to score.

    Example:
        >>> from speakerrpl.data.protocols import Fold, Protocol
        >>> emb = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1], [-1, 0.0]])
        >>> ids = np.array(["a1", "a2", "b1", "b2", "c1"])
        >>> spk = np.array(["a", "a", "b", "b", "c"])
        >>> p = Protocol([Fold(["a", "b"], {"a": ["a1"], "b": ["b1"]}, ["a2", "b2"], ["c1"])])
        >>> cosine_baseline(emb, ids, spk, p)["clean"]
        {'eer': 0.0, 'eer_std': 0.0, 'accuracy': 1.0}
    """
    utterances = dict(zip(utt_ids.tolist(), speakers.tolist(), strict=True))
    validate_protocol(protocol, utterances)
    draws = draws_per_fold(protocol)
    index = {u: i for i, u in enumerate(utt_ids.tolist())}
    x = np.asarray(embeddings, dtype=np.float64)
    results: dict[str, dict[str, float]] = {}
    for condition in protocol.conditions:
        per_draw = []
        for fold in protocol.folds:
            enroll = [(index[u], t) for t in fold.targets for u in fold.enroll[t]]
            _, unit_centroids = centroids(x[[i for i, _ in enroll]], [t for _, t in enroll])
            known = [index[condition_utt_id(u, condition)] for u in fold.test_known]
            unknown = [index[condition_utt_id(u, condition)] for u in fold.test_unknown]
            if not known:
                raise ProtocolError("a fold has no known test utterances")
            labels = np.array([fold.targets.index(utterances[u]) for u in fold.test_known])
            known_scores = cosine_scores(x[known], unit_centroids)
            unknown_scores = cosine_scores(x[unknown], unit_centroids)
            scores, trial_labels = metrics.identification_trials(
                known_scores, labels, unknown_scores.reshape(-1, len(fold.targets))
            )
            per_draw.append(
                {
                    "eer": metrics.eer(scores, trial_labels),
                    "accuracy": metrics.accuracy(known_scores, labels),
                }
            )
        summary = summarize(average_draws(per_draw, draws))
        results[condition] = {
            "eer": summary["mean"]["eer"],
            "eer_std": summary["std"]["eer"],
            "accuracy": summary["mean"]["accuracy"],
        }
    return results


def corpus_baseline(
    embeddings: EmbeddingSet,
    voices: Mapping[str, Mapping[str, str]] | None = None,
    *,
    n_targets: int = 20,
    n_enroll: int = 3,
    n_folds: int = 5,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Cosine baseline of a built corpus: every non-target speaker is an unknown.

    ``n_targets`` shrinks to half the speakers for small corpora. Scores ``clean`` and every
    condition with a copy of each conditioned utterance; with condition copies, the tests are
    the conditioned utterances and enrollment comes from the other clean ones.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> centres = rng.standard_normal((6, 8))
        >>> ids = [f"s{s}-{i}" for s in range(6) for i in range(5)]
        >>> emb = np.repeat(centres, 5, axis=0) + 0.1 * rng.standard_normal((30, 8))
        >>> es = EmbeddingSet(emb, ids, [u.split("-")[0] for u in ids], "toy")
        >>> corpus_baseline(es, n_targets=3, n_enroll=2, n_folds=2)["clean"]["accuracy"]
        1.0
    """
    ids = embeddings.utt_ids.tolist()
    conditions = available_conditions(ids)
    clean, enroll, tests = protocol_candidates(ids, embeddings.speakers.tolist(), conditions)
    n_speakers = len(set(clean.values()))
    k = min(n_targets, n_speakers // 2)
    protocol = make_protocol(
        clean,
        n_targets=k,
        n_enroll=n_enroll,
        n_unknowns=n_speakers - k,
        n_folds=n_folds,
        seed=seed,
        voices=voices,
        conditions=conditions,
        enroll_candidates=enroll,
        test_candidates=tests,
    )
    return cosine_baseline(embeddings.embeddings, embeddings.utt_ids, embeddings.speakers, protocol)


def _clean_centroids(embeddings: EmbeddingSet) -> tuple[list[str], np.ndarray]:
    """Sorted speakers and the unit centroids of their clean utterances."""
    clean = clean_utterances(embeddings.utt_ids.tolist(), embeddings.speakers.tolist())
    index = {u: i for i, u in enumerate(embeddings.utt_ids.tolist())}
    rows = [index[u] for u in clean]
    x = np.asarray(embeddings.embeddings, dtype=np.float64)[rows]
    return centroids(x, [clean[u] for u in clean])


def near_duplicates(
    embeddings: EmbeddingSet, other: EmbeddingSet | None = None, threshold: float = 0.8
) -> list[tuple[str, str, float]]:
    """Pairs of voices whose clean-utterance centroids have cosine >= ``threshold``.

    Within ``embeddings`` (each pair once), or between ``embeddings`` and ``other`` (e.g.
    eval voices against the negative pool) when given; highest cosine first.

    Example:
        >>> e = np.array([[1.0, 0.0], [1.0, 0.05], [0.0, 1.0], [0.99, 0.1]])
        >>> es = EmbeddingSet(e, ["a1", "a2", "b1", "c1"], ["a", "a", "b", "c"], "toy")
        >>> [(a, b) for a, b, _ in near_duplicates(es, threshold=0.9)]
        [('a', 'c')]
    """
    names, centroids = _clean_centroids(embeddings)
    if other is None:
        cos = centroids @ centroids.T
        pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
        other_names = names
    else:
        other_names, other_centroids = _clean_centroids(other)
        cos = centroids @ other_centroids.T
        pairs = [(i, j) for i in range(len(names)) for j in range(len(other_names))]
    found = [(names[i], other_names[j], float(cos[i, j])) for i, j in pairs]
    return sorted((p for p in found if p[2] >= threshold), key=lambda p: (-p[2], p[0], p[1]))


def deployment_baseline(
    embeddings: EmbeddingSet,
    voices: Mapping[str, Mapping[str, str]] | None = None,
    *,
    deployments: Sequence[Deployment] = DEPLOYMENTS,
    role: str = "report",
    seed: int = 0,
) -> dict[str, dict[str, dict[str, float]]]:
    """Cosine baseline of each deployment's ``role`` folds: stem -> condition -> figures.

    Deployments the corpus is too small for are left out.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> centres = rng.standard_normal((8, 8))
        >>> ids = [f"s{s}-{i}" for s in range(8) for i in range(5)]
        >>> emb = np.repeat(centres, 5, axis=0) + 0.1 * rng.standard_normal((40, 8))
        >>> es = EmbeddingSet(emb, ids, [u.split("-")[0] for u in ids], "toy")
        >>> out = deployment_baseline(es, deployments=[Deployment("household", 2, 3)])
        >>> out["household-k2-e3"]["clean"]["accuracy"]
        1.0
    """
    ids, speakers = embeddings.utt_ids.tolist(), embeddings.speakers.tolist()
    results = {}
    for deployment in deployments:
        try:
            protocol = deployment_protocol(
                ids, speakers, deployment, role, seed=seed, voices=voices
            )
        except ProtocolError:
            continue
        results[deployment.stem] = cosine_baseline(
            embeddings.embeddings, embeddings.utt_ids, embeddings.speakers, protocol
        )
    return results


def embed_and_score_corpus(
    eval_dir: str | Path,
    frontend: str = "campplus",
    *,
    seed: int = 0,
    jobs: int = 1,
    progress: bool = False,
) -> tuple[dict[str, dict[str, float]], int]:
    """Embed a built ``DIR/eval`` and score it per condition with :func:`corpus_baseline`.

    ``DIR/eval`` holds every clean utterance plus the condition copies of each voice's test
    subset only (``speakerrpl corpus build --condition-tests N``), which is exactly what the
    baseline needs. Embeddings are cached (see :func:`speakerrpl.embeddings.extract_embeddings`).

    Returns:
        The per-condition figures of :func:`corpus_baseline` and the number of utterances
        that could not be embedded.

    Example:
        >>> embed_and_score_corpus("data/demo/corpus/eval")  # doctest: +SKIP
    """
    from speakerrpl.data.corpus_files import read_voices
    from speakerrpl.data.kaldi import read_data_dir
    from speakerrpl.embeddings import extract_embeddings

    utts = read_data_dir(eval_dir)
    embeddings, failures = extract_embeddings(utts, frontend, jobs=jobs, progress=progress)
    return corpus_baseline(embeddings, read_voices(eval_dir), seed=seed), len(failures)
