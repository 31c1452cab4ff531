"""Diarization metrics: DER and JER (pyannote.metrics) and the naming rates of open-set naming.

Turns are ``(start, end, label)`` tuples. :func:`naming_rates` is our own frame-based measure
(10 ms frames): of the enrolled speakers' speech time, the share whose hypothesis label at that
instant is the speaker's own name; of the strangers' speech time, the share labelled with the
name of an enrolled person who is not speaking at that instant (the error that matters most).
In overlap, a reference speaker counts as named when any hypothesis label at that instant is
its name, and a stranger talking over Alice while the system says "Alice" is no error. Like
DER, the rates can leave out a ``collar`` around reference boundaries (pyannote's convention:
``collar / 2`` on each side).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from speakerrpl._optional import require

__all__ = ["der_jer", "naming_rates"]

Turns = Sequence[tuple[float, float, str]]


def _annotation(turns: Turns) -> Any:
    core = require("pyannote.core", extra="dev", purpose="DER/JER (pyannote.metrics)")
    ann = core.Annotation()
    for i, (a, b, label) in enumerate(turns):
        if b > a:
            ann[core.Segment(float(a), float(b)), i] = label
    return ann


def der_jer(reference: Turns, hypothesis: Turns, collar: float = 0.0) -> dict[str, float]:
    """DER with its parts and JER from pyannote.metrics (overlap scored, optimal mapping).

    ``collar`` follows pyannote's convention: the total width removed around each reference
    boundary (``collar / 2`` on each side).

    Returns:
        ``der``, ``false_alarm``, ``missed``, ``confusion`` (shares of reference speech) and
        ``jer``.
    """
    metrics = require("pyannote.metrics.diarization", extra="dev", purpose="DER/JER")
    ref, hyp = _annotation(reference), _annotation(hypothesis)
    der = metrics.DiarizationErrorRate(collar=collar, skip_overlap=False)
    parts = der(ref, hyp, detailed=True)
    total = max(parts["total"], 1e-12)
    jer = metrics.JaccardErrorRate(collar=collar, skip_overlap=False)(ref, hyp)
    return {
        "der": float(parts["diarization error rate"]),
        "false_alarm": float(parts["false alarm"] / total),
        "missed": float(parts["missed detection"] / total),
        "confusion": float(parts["confusion"] / total),
        "jer": float(jer),
    }


def _frames(turns: Turns, labels: Sequence[str], n: int, step: float) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    grid = np.zeros((len(labels), n), dtype=bool)
    for a, b, label in turns:
        grid[index[label], round(a / step) : round(b / step)] = True
    return grid


def naming_rates(
    reference: Turns,
    hypothesis: Turns,
    enrolled: Collection[str],
    collar: float = 0.0,
    step: float = 0.01,
) -> dict[str, float]:
    """Open-set naming quality (see the module docstring).

    Args:
        reference: true turns, labelled with real speaker names.
        hypothesis: system turns (enrolled names or anything else for strangers).
        enrolled: the names of the enrolled speakers.
        collar: seconds left out around each reference boundary (half on each side).
        step: frame length in seconds.

    Returns:
        ``correct_name`` (share of enrolled speakers' speech with their name; ``nan`` if none),
        ``stranger_as_enrolled`` (share of strangers' speech given an enrolled name; ``nan`` if
        no stranger speaks), and the seconds both are computed on.

    Example:
        >>> ref = [(0.0, 2.0, "ann"), (2.0, 4.0, "x")]
        >>> hyp = [(0.0, 1.0, "ann"), (1.0, 3.0, "SPEAKER_01"), (3.0, 4.0, "ann")]
        >>> naming_rates(ref, hyp, {"ann"})["stranger_as_enrolled"]
        0.5
    """
    end = max([b for _, b, _ in [*reference, *hypothesis]], default=0.0)
    n = round(end / step) + 1
    ref_labels = sorted({label for *_, label in reference})
    hyp_labels = sorted({label for *_, label in hypothesis})
    ref = _frames(reference, ref_labels, n, step)
    hyp = _frames(hypothesis, hyp_labels, n, step)
    enrolled = set(enrolled)
    keep = np.ones(n, dtype=bool)
    half = round(collar / 2 / step)
    for a, b, _ in reference if half else ():
        for edge in (round(a / step), round(b / step)):
            keep[max(edge - half, 0) : edge + half] = False
    wrong_name = np.zeros(n, dtype=bool)  # an enrolled name given while that person is silent
    for j, label in enumerate(hyp_labels):
        if label in enrolled:
            silent = ~ref[ref_labels.index(label)] if label in ref_labels else np.ones(n, bool)
            wrong_name |= hyp[j] & silent
    known_total = known_ok = stranger_total = stranger_bad = 0
    for i, speaker in enumerate(ref_labels):
        mine = ref[i] & keep
        if speaker in enrolled:
            known_total += int(mine.sum())
            if speaker in hyp_labels:
                known_ok += int((mine & hyp[hyp_labels.index(speaker)]).sum())
        else:
            stranger_total += int(mine.sum())
            stranger_bad += int((mine & wrong_name).sum())
    return {
        "correct_name": known_ok / known_total if known_total else float("nan"),
        "stranger_as_enrolled": stranger_bad / stranger_total if stranger_total else float("nan"),
        "enrolled_seconds": known_total * step,
        "stranger_seconds": stranger_total * step,
    }
