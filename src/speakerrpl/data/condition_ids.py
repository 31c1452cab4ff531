"""Test-condition names and utterance ids of condition copies (no signal processing here).

A condition copy of utterance ``U`` has the id ``U__<condition>`` (:func:`condition_utt_id`);
originals are condition ``clean``. Only a fixed test subset of each voice gets condition copies
(:func:`select_condition_tests`, the last few clean utterances in id order);
:func:`conditioned_utterances` recovers that subset from any list of ids, so the corpus builder,
the baseline and protocols share one definition. The signal processing that makes the copies is
:mod:`speakerrpl.synth.conditions`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from speakerrpl.errors import InvalidInputError

__all__ = [
    "CLEAN",
    "COMPLETE_SHARE",
    "CONDITIONS",
    "KNOWN_CONDITIONS",
    "LEGACY_CONDITIONS",
    "available_conditions",
    "clean_utterances",
    "complete_tests",
    "condition_utt_id",
    "conditioned_utterances",
    "resolve_conditions",
    "select_condition_tests",
    "split_condition",
]

CLEAN = "clean"
# test conditions of the corpus builder (docs/corpus.md): channel mismatch, noise, short commands
CONDITIONS: tuple[str, ...] = (
    "device",  # device colouration (EQ): the clean-but-mismatched-channel condition
    "codec",  # EQ + low-bitrate Opus / Vorbis / MP3
    "phone",  # 8 kHz telephone band, G.711 mu-law or GSM 06.10
    "far",  # far-field room, source 1-5 m away, ambient noise
    "babble",  # other corpus voices
    "noise",  # stationary noise: white, pink, brown, hum
    "music",  # music-like noise
    "short",  # 0.8-1.5 s crop, close-talk
    "short_far",  # 0.8-1.5 s crop, far-field, babble / noise / music
)
# SNR (dB) drawn uniformly per test copy
SNR_RANGES_DB = {
    "far": (15.0, 25.0),
    "babble": (3.0, 12.0),
    "noise": (0.0, 10.0),
    "music": (0.0, 10.0),
    "short_far": (5.0, 15.0),
}
CROP_RANGE_S = (0.8, 1.5)
# names of the corpora built before the conditions above (still read: ids, protocols, baseline)
LEGACY_CONDITIONS: tuple[str, ...] = (
    "babble20", "babble10", "babble5", "noise20", "noise10", "noise5", "reverb", "crop"
)  # fmt: skip
KNOWN_CONDITIONS: tuple[str, ...] = CONDITIONS + LEGACY_CONDITIONS
_SEPARATOR = "__"


def condition_utt_id(utt_id: str, condition: str) -> str:
    """The utterance id of the ``condition`` copy of ``utt_id`` (``clean`` keeps the id).

    Example:
        >>> condition_utt_id("flite-slt-003", "babble5")
        'flite-slt-003__babble5'
        >>> condition_utt_id("flite-slt-003", "clean")
        'flite-slt-003'
    """
    if condition == CLEAN:
        return utt_id
    if condition not in KNOWN_CONDITIONS:
        raise InvalidInputError(f"unknown condition {condition!r}; expected one of {CONDITIONS}")
    return f"{utt_id}{_SEPARATOR}{condition}"


def split_condition(utt_id: str) -> tuple[str, str]:
    """Inverse of :func:`condition_utt_id`: ``(clean utterance id, condition)``.

    Example:
        >>> split_condition("flite-slt-003__noise5"), split_condition("flite-slt-003")
        (('flite-slt-003', 'noise5'), ('flite-slt-003', 'clean'))
    """
    base, sep, suffix = utt_id.rpartition(_SEPARATOR)
    if sep and suffix in KNOWN_CONDITIONS:
        return base, suffix
    return utt_id, CLEAN


def clean_utterances(utt_ids: Sequence[str], speakers: Sequence[str]) -> dict[str, str]:
    """Clean utterance id -> speaker, leaving out test-condition copies (``U__<condition>``).

    Example:
        >>> clean_utterances(["a1", "a1__crop", "b1"], ["a", "a", "b"])
        {'a1': 'a', 'b1': 'b'}
    """
    return {
        u: s for u, s in zip(utt_ids, speakers, strict=True) if split_condition(str(u))[1] == CLEAN
    }


def select_condition_tests(utterances: Mapping[str, str], n_tests: int) -> list[str]:
    """The last ``n_tests`` clean utterances of each speaker in id order (sorted result).

    These are the utterances the corpus builder makes condition copies of; the rest of each
    voice's clean utterances are left for enrollment.

    Example:
        >>> select_condition_tests({"a-00": "a", "a-01": "a", "a-02": "a", "b-00": "b"}, 2)
        ['a-01', 'a-02', 'b-00']
    """
    if n_tests < 0:
        raise InvalidInputError(f"n_tests must be >= 0, got {n_tests}")
    by_speaker: dict[str, list[str]] = {}
    for utt, spk in sorted(utterances.items()):
        by_speaker.setdefault(spk, []).append(utt)
    return sorted(u for utts in by_speaker.values() for u in utts[max(0, len(utts) - n_tests) :])


def conditioned_utterances(utt_ids: Iterable[str]) -> set[str]:
    """Clean utterance ids that have at least one condition copy among ``utt_ids``.

    An utterance is a *conditioned test utterance* iff it has condition copies: protocols over
    conditions test on these and enroll from the other clean utterances.

    Example:
        >>> sorted(conditioned_utterances(["a1", "a2", "a2__crop", "a2__reverb"]))
        ['a2']
    """
    bases = (split_condition(str(u)) for u in utt_ids)
    return {base for base, condition in bases if condition != CLEAN}


COMPLETE_SHARE = 0.9
"""A condition counts as available when it has copies of this share of the conditioned
utterances: a copy can be missing (e.g. a 0.8 s command crop with under 0.5 s of speech is
not embedded), which should drop that test utterance, not the whole condition."""


def available_conditions(utt_ids: Sequence[str]) -> list[str]:
    """``clean`` plus every condition with a copy of (nearly) every conditioned utterance.

    Nearly: at least :data:`COMPLETE_SHARE` of them; tests are then the utterances with a copy
    in every chosen condition (:func:`complete_tests`).

    Example:
        >>> available_conditions(["a1", "a1__crop", "b1", "b1__crop", "b1__reverb"])
        ['clean', 'crop']
        >>> available_conditions(["a1", "a2", "a2__crop"])  # a1 is an enrollment-only utterance
        ['clean', 'crop']
    """
    copies = _copies(utt_ids)
    tested = set().union(*copies.values()) if copies else set()
    return [CLEAN] + [
        c
        for c in KNOWN_CONDITIONS
        if tested and len(copies.get(c, set()) & tested) >= COMPLETE_SHARE * len(tested)
    ]


def complete_tests(utt_ids: Sequence[str], conditions: Sequence[str]) -> set[str]:
    """Conditioned utterances with a copy in every condition of ``conditions`` but clean.

    Example:
        >>> sorted(complete_tests(["a1", "a1__crop", "b1", "b1__crop", "b1__reverb"],
        ...                       ["clean", "reverb"]))
        ['b1']
    """
    copies = _copies(utt_ids)
    tested = set().union(*copies.values()) if copies else set()
    for condition in conditions:
        if condition != CLEAN:
            tested &= copies.get(condition, set())
    return tested


def _copies(utt_ids: Sequence[str]) -> dict[str, set[str]]:
    """condition -> the clean ids that have a copy in it."""
    copies: dict[str, set[str]] = {}
    for u in utt_ids:
        base, condition = split_condition(str(u))
        if condition != CLEAN:
            copies.setdefault(condition, set()).add(base)
    return copies


def resolve_conditions(spec: str | Sequence[str], utt_ids: Sequence[str]) -> list[str]:
    """Condition names from ``auto`` (:func:`available_conditions`), ``all`` or ``a,b,...``.

    Example:
        >>> resolve_conditions("clean,crop", []), resolve_conditions("auto", ["a1"])
        (['clean', 'crop'], ['clean'])
        >>> len(resolve_conditions("all", [])) == 1 + len(CONDITIONS)
        True
    """
    if isinstance(spec, str):
        if spec == "auto":
            return available_conditions(utt_ids)
        if spec == "all":
            return [CLEAN, *CONDITIONS]
        spec = [c.strip() for c in spec.split(",") if c.strip()]
    names = list(spec)
    bad = [c for c in names if c != CLEAN and c not in KNOWN_CONDITIONS]
    if bad or not names:
        raise InvalidInputError(
            f"unknown conditions {bad or names}; expected 'auto', 'all' or names among "
            f"{(CLEAN, *CONDITIONS)}"
        )
    return names
