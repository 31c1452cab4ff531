"""Seeded few-shot open-set protocols: folds of targets, enrollment, known and unknown tests.

A protocol lives in a JSON file with a content hash (SHA-256 of its canonical JSON without the
``hash`` field). Folds hold *clean* utterance ids; the protocol's ``conditions`` name the test
sets, and the condition-``c`` copy of test utterance ``U`` is
:func:`speakerrpl.data.condition_ids.condition_utt_id` ``(U, c)``. Enrollment is always clean.
Over a corpus with condition copies (:func:`make_corpus_protocol`), tests are the conditioned
utterances and enrollment comes from the other clean ones, so every test exists in every condition.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from speakerrpl.data.condition_ids import (
    CLEAN,
    KNOWN_CONDITIONS,
    clean_utterances,
    complete_tests,
    condition_utt_id,
    conditioned_utterances,
    resolve_conditions,
    split_condition,
)
from speakerrpl.errors import InvalidInputError, ProtocolError

__all__ = [
    "Fold",
    "Protocol",
    "draws_per_fold",
    "load_protocol",
    "make_corpus_protocol",
    "make_protocol",
    "protocol_candidates",
    "save_protocol",
    "validate_protocol",
]

FORMAT_VERSION = 1
_STRATA = ("engine", "language", "gender")


@dataclass(frozen=True)
class Fold:
    """One few-shot open-set split.

    Attributes:
        targets: the enrolled speakers.
        enroll: speaker -> enrollment utterance ids.
        test_known: the targets' other utterance ids.
        test_unknown: utterance ids of speakers that are neither targets nor in the pool.
    """

    targets: list[str]
    enroll: dict[str, list[str]]
    test_known: list[str]
    test_unknown: list[str]


@dataclass(frozen=True)
class Protocol:
    """Folds plus the settings that produced them (``params``) and the test ``conditions``."""

    folds: list[Fold]
    conditions: list[str] = field(default_factory=lambda: [CLEAN])
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, with its content hash."""
        body = {
            "format_version": FORMAT_VERSION,
            "params": self.params,
            "conditions": list(self.conditions),
            "folds": [asdict(f) for f in self.folds],
        }
        return {**body, "hash": _hash(body)}


def _hash(body: Mapping[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _stratified(
    speakers: Sequence[str], k: int, rng: random.Random, meta: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """Pick ``k`` speakers spread proportionally over the strata (systematic sampling)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for spk in speakers:
        key = tuple(meta.get(spk, {}).get(s, "?") for s in _STRATA)
        groups.setdefault(key, []).append(spk)
    ranked = []
    for members in groups.values():
        rng.shuffle(members)
        offset = rng.random()
        ranked += [((i + offset) / len(members), rng.random(), m) for i, m in enumerate(members)]
    ranked.sort()
    return [m for _, _, m in ranked[:k]]


def make_protocol(
    utterances: Mapping[str, str],
    *,
    n_targets: int,
    n_enroll: int,
    n_unknowns: int,
    n_folds: int = 5,
    seed: int = 0,
    voices: Mapping[str, Mapping[str, str]] | None = None,
    conditions: Sequence[str] = (CLEAN,),
    exclude_speakers: Collection[str] = (),
    enroll_candidates: Collection[str] | None = None,
    test_candidates: Collection[str] | None = None,
) -> Protocol:
    """Draw ``n_folds`` seeded few-shot open-set folds over clean utterances.

    Args:
        utterances: clean utterance id -> speaker.
        n_targets: K enrolled speakers per fold.
        n_enroll: enrollment utterances per target.
        n_unknowns: unknown test speakers per fold (disjoint from targets and excluded ones).
        n_folds: number of folds.
        seed: the only source of randomness.
        voices: speaker -> {"engine", "language", "gender", ...}; stratifies the draws.
        conditions: test conditions the protocol evaluates (``clean`` and/or
            :data:`~speakerrpl.data.condition_ids.CONDITIONS`).
        exclude_speakers: speakers never used (e.g. the negative pool).
        enroll_candidates: utterance ids allowed for enrollment (default: all).
        test_candidates: utterance ids allowed as tests (default: all not enrolled).

    Raises:
        ProtocolError: too few speakers or utterances for the request, or a bad condition.

    Example:
        >>> utts = {f"s{s}-{i}": f"s{s}" for s in range(6) for i in range(4)}
        >>> p = make_protocol(utts, n_targets=2, n_enroll=2, n_unknowns=3, n_folds=2, seed=1)
        >>> len(p.folds), len(p.folds[0].targets), len(p.folds[0].test_known)
        (2, 2, 4)
    """
    bad = [c for c in conditions if c != CLEAN and c not in KNOWN_CONDITIONS]
    if bad or not conditions:
        raise ProtocolError(
            f"unknown conditions {bad}; expected among {(CLEAN, *KNOWN_CONDITIONS)}"
        )
    if min(n_targets, n_enroll, n_folds) < 1 or n_unknowns < 0:
        raise ProtocolError("n_targets, n_enroll and n_folds must be >= 1, n_unknowns >= 0")
    by_speaker: dict[str, list[str]] = {}
    for utt, spk in sorted(utterances.items()):
        if spk not in exclude_speakers:
            by_speaker.setdefault(spk, []).append(utt)
    allowed = set(utterances) if enroll_candidates is None else set(enroll_candidates)
    eligible = sorted(
        s
        for s, us in by_speaker.items()
        if sum(u in allowed for u in us) >= n_enroll and len(us) > n_enroll
    )
    if len(eligible) < n_targets or len(by_speaker) < n_targets + n_unknowns:
        raise ProtocolError(
            f"need {n_targets} target speakers with > {n_enroll} utterances and "
            f"{n_targets + n_unknowns} speakers in all; have {len(eligible)} eligible of "
            f"{len(by_speaker)}"
        )
    rng, meta = random.Random(seed), voices or {}
    folds = []
    for _ in range(n_folds):
        targets = sorted(_stratified(eligible, n_targets, rng, meta))
        rest = sorted(set(by_speaker) - set(targets))
        unknowns = sorted(_stratified(rest, n_unknowns, rng, meta))
        enroll = {
            t: sorted(rng.sample([u for u in by_speaker[t] if u in allowed], n_enroll))
            for t in targets
        }
        tests = set(utterances) if test_candidates is None else set(test_candidates)
        known = [u for t in targets for u in by_speaker[t] if u not in enroll[t] and u in tests]
        unknown = [u for s in unknowns for u in by_speaker[s] if u in tests]
        folds.append(Fold(targets, enroll, known, unknown))
    params = {
        "n_targets": n_targets,
        "n_enroll": n_enroll,
        "n_unknowns": n_unknowns,
        "n_folds": n_folds,
        "seed": seed,
    }
    return Protocol(folds, list(conditions), params)


def protocol_candidates(
    utt_ids: Sequence[str], speakers: Sequence[str], conditions: Sequence[str]
) -> tuple[dict[str, str], set[str] | None, set[str] | None]:
    """``(clean utterance -> speaker, enroll candidates, test candidates)`` for ``conditions``.

    When the ids hold condition copies and a condition other than ``clean`` is asked for,
    tests are the conditioned utterances with a copy in every asked condition
    (:func:`~speakerrpl.data.condition_ids.complete_tests`; one whose copy failed to embed is
    dropped), enrollment candidates the clean utterances without copies, and speakers without
    a test utterance are left out.
    Otherwise (also when *every* clean utterance has copies, as in corpora built before the
    test subset existed) every clean utterance may be used for either (``None``).

    Example:
        >>> ids = ["a1", "a2", "a2__crop", "b1", "b2", "b2__crop"]
        >>> utts, enroll, tests = protocol_candidates(ids, [i[0] for i in ids], ["crop"])
        >>> sorted(enroll), sorted(tests)
        (['a1', 'b1'], ['a2', 'b2'])
    """
    clean = clean_utterances(utt_ids, speakers)
    conditioned = conditioned_utterances(utt_ids) & set(clean)
    if not conditioned or conditioned == set(clean) or all(c == CLEAN for c in conditions):
        return clean, None, None
    tests = complete_tests(utt_ids, conditions) & conditioned
    tested = {clean[u] for u in tests}
    clean = {u: s for u, s in clean.items() if s in tested}
    return clean, set(clean) - conditioned, tests


def make_corpus_protocol(
    utt_ids: Sequence[str],
    speakers: Sequence[str],
    *,
    n_targets: int,
    n_enroll: int,
    n_unknowns: int,
    n_folds: int = 5,
    seed: int = 0,
    voices: Mapping[str, Mapping[str, str]] | None = None,
    conditions: str | Sequence[str] = "auto",
    exclude_speakers: Collection[str] = (),
) -> Protocol:
    """:func:`make_protocol` over an embedding set or corpus that may hold condition copies.

    ``conditions`` is ``auto`` (clean + every condition complete over the conditioned
    utterances), ``all``, comma-separated names or a list. Candidates come from
    :func:`protocol_candidates`; the result is validated against the ids.

    Raises:
        ProtocolError: as :func:`make_protocol`, or a condition copy of a test is missing.

    Example:
        >>> ids = [f"s{s}-{i}" for s in range(4) for i in range(4)]
        >>> ids += [f"{u}__crop" for u in ids if u.endswith(("-2", "-3"))]  # the test subset
        >>> p = make_corpus_protocol(ids, [u[:2] for u in ids], n_targets=2, n_enroll=2,
        ...                          n_unknowns=2, n_folds=1, conditions="auto")
        >>> p.conditions, p.folds[0].test_known, p.params["tests"]
        (['clean', 'crop'], ['s0-2', 's0-3', 's2-2', 's2-3'], 'conditioned')
    """
    try:
        names = resolve_conditions(conditions, utt_ids)
    except InvalidInputError as exc:
        raise ProtocolError(str(exc)) from exc
    clean, enroll, tests = protocol_candidates(utt_ids, speakers, names)
    protocol = make_protocol(
        clean,
        n_targets=n_targets,
        n_enroll=n_enroll,
        n_unknowns=n_unknowns,
        n_folds=n_folds,
        seed=seed,
        voices=voices,
        conditions=names,
        exclude_speakers=exclude_speakers,
        enroll_candidates=enroll,
        test_candidates=tests,
    )
    if tests is not None:
        protocol = Protocol(
            protocol.folds, protocol.conditions, {**protocol.params, "tests": "conditioned"}
        )
    validate_protocol(protocol, dict(zip(utt_ids, speakers, strict=True)))
    return protocol


def save_protocol(protocol: Protocol, path: str | Path) -> str:
    """Write the protocol as JSON; return its content hash.

    Example:
        >>> import tempfile, os
        >>> p = Protocol([Fold(["a"], {"a": ["a1"]}, ["a2"], ["b1"])])
        >>> len(save_protocol(p, os.path.join(tempfile.mkdtemp(), "p.json")))
        64
    """
    data = protocol.to_dict()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return str(data["hash"])


def _parse(data: Any, source: str) -> Protocol:
    try:
        body = {k: data[k] for k in ("format_version", "params", "conditions", "folds")}
        stored = data["hash"]
        folds = [
            Fold(
                list(f["targets"]),
                {k: list(v) for k, v in f["enroll"].items()},
                list(f["test_known"]),
                list(f["test_unknown"]),
            )
            for f in body["folds"]
        ]
    except (KeyError, TypeError, AttributeError) as exc:
        raise ProtocolError(f"{source}: not a speakerrpl protocol (missing or bad {exc})") from exc
    if body["format_version"] != FORMAT_VERSION:
        raise ProtocolError(f"{source}: format_version {body['format_version']} is not supported")
    if _hash(body) != stored:
        raise ProtocolError(f"{source}: content hash mismatch (the file was edited or is corrupt)")
    protocol = Protocol(folds, list(body["conditions"]), dict(body["params"]))
    try:
        draws_per_fold(protocol)
    except ProtocolError as exc:
        raise ProtocolError(f"{source}: {exc}") from exc
    return protocol


def load_protocol(
    path: str | Path,
    utterances: Mapping[str, str] | None = None,
) -> Protocol:
    """Read a protocol JSON, check its hash and (optionally) validate it against a corpus.

    Args:
        path: the JSON file.
        utterances: utterance id -> speaker of the embedding set or corpus it is used with
            (e.g. ``dict(zip(emb.utt_ids, emb.speakers))``); validated when given.

    Raises:
        ProtocolError: unreadable, edited (hash mismatch), or inconsistent with ``utterances``.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "p.json")
        >>> _ = save_protocol(Protocol([Fold(["a"], {"a": ["a1"]}, ["a2"], ["b1"])]), path)
        >>> load_protocol(path, {"a1": "a", "a2": "a", "b1": "b"}).folds[0].targets
        ['a']
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProtocolError(f"cannot read protocol {path}: {exc}") from exc
    protocol = _parse(data, str(path))
    if utterances is not None:
        validate_protocol(protocol, utterances)
    return protocol


def draws_per_fold(protocol: Protocol) -> int:
    """How many consecutive folds one reported split averages (``params["draws_per_fold"]``).

    A deployment protocol may draw several independent households per reported split, so that
    the spread over splits measures methods rather than which people one household happens to
    hold; the split's metrics are the mean over its draws. Protocols without the parameter
    have one draw per split.

    Raises:
        ProtocolError: not a positive integer that divides the number of folds.

    Example:
        >>> f = Fold(["a"], {"a": ["a1"]}, ["a2"], ["b1"])
        >>> draws_per_fold(Protocol([f, f, f, f], params={"draws_per_fold": 2}))
        2
    """
    draws = protocol.params.get("draws_per_fold", 1)
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ProtocolError(f"params.draws_per_fold must be an integer >= 1, got {draws!r}")
    if len(protocol.folds) % draws:
        raise ProtocolError(
            f"params.draws_per_fold = {draws} does not divide the {len(protocol.folds)} folds"
        )
    return draws


def validate_protocol(protocol: Protocol, utterances: Mapping[str, str]) -> None:
    """Check the folds' ids, their condition copies and speakers against a corpus.

    Every listed id must be a clean id present in ``utterances``; so must the copy of every
    test id in each of the protocol's conditions; enrollment and known tests belong to the
    fold's targets, unknown tests to other speakers.

    Raises:
        ProtocolError: naming the first problem found.

    Example:
        >>> p = Protocol([Fold(["a"], {"a": ["a1"]}, ["a2"], ["b1"])])
        >>> validate_protocol(p, {"a1": "a", "a2": "a", "b1": "b"})
    """
    draws_per_fold(protocol)
    for n, fold in enumerate(protocol.folds):
        if set(fold.enroll) != set(fold.targets):
            raise ProtocolError(f"fold {n}: enroll keys differ from the targets")
        listed = (
            [u for us in fold.enroll.values() for u in us] + fold.test_known + fold.test_unknown
        )
        copies = [u for u in listed if split_condition(u)[1] != CLEAN]
        if copies:
            raise ProtocolError(f"fold {n}: lists condition copy {copies[0]!r}, not a clean id")
        for target, utts in fold.enroll.items():
            _check_ids(utts, utterances, n, "enroll", {target}, True)
        targets = set(fold.targets)
        tests = [condition_utt_id(u, c) for u in fold.test_known for c in protocol.conditions]
        _check_ids(tests, utterances, n, "test_known", targets, True)
        tests = [condition_utt_id(u, c) for u in fold.test_unknown for c in protocol.conditions]
        _check_ids(tests, utterances, n, "test_unknown", targets, False)
        enrolled = {u for us in fold.enroll.values() for u in us}
        if enrolled & set(fold.test_known):
            raise ProtocolError(f"fold {n}: enrollment and test utterances overlap")


def _check_ids(
    ids: Sequence[str],
    utterances: Mapping[str, str],
    fold: int,
    part: str,
    speakers: set[str],
    inside: bool,
) -> None:
    """Every id must exist and its speaker be in (``inside``) or out of ``speakers``."""
    for utt in ids:
        if utt not in utterances:
            raise ProtocolError(f"fold {fold}: {part} utterance {utt!r} is not in the embeddings")
        if (utterances[utt] in speakers) != inside:
            raise ProtocolError(
                f"fold {fold}: {part} utterance {utt!r} has inconsistent speaker "
                f"{utterances[utt]!r}"
            )
