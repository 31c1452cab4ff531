"""Channel copies of enrollment audio: multi-condition enrollment.

A voice assistant enrolls a person from a few clean close-talk clips and then hears them
through far-field rooms, phones, codecs and noise. :func:`enrollment_copies` passes each
enrollment clip through the seven degraded channels of
:func:`speakerrpl.synth.conditions.apply_condition` (:data:`CHANNELS`), so the enrollment also
covers the channels a test may come through; their embeddings go to
``OpenSetSpeakerIdentifier.fit(..., copies=)``, which adds them to the cosine centroids
(docs/results.md, "Copies for the cosine centroid only": on the report half the default's
EER fell 7-26 % at K >= 2, and genuine speakers heard through a poor channel were missed less
often, with every false-accept goal kept).

The copies are deterministic for a clip's ``key`` (the service uses the clip's SHA-256). Rooms,
noise seeds and babble talkers are this module's own, disjoint from the corpus's test copies
and from the shipped channel model's; the babble talkers are espeak-ng voices synthesised once
(:func:`babble_talkers`, cached), never an enrolled person.
"""

from __future__ import annotations

import logging
import zipfile
import zlib
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from speakerrpl.errors import InvalidInputError, TTSError
from speakerrpl.runtime import cache_root
from speakerrpl.synth.channels import Room, room_impulse_responses
from speakerrpl.synth.conditions import apply_condition
from speakerrpl.synth.engines import synthesize
from speakerrpl.synth.voices import load_texts, pool_voices

__all__ = ["CHANNELS", "babble_talkers", "channel_copies", "embedded_copies", "enrollment_copies"]

logger = logging.getLogger(__name__)

CHANNELS = ("device", "codec", "phone", "far", "babble", "noise", "music")
"""The degraded channels every enrollment clip is copied through, in this order."""
ROOM_SEED, BABBLE_SEED, CONDITION_SEED = 4243, 4244, 4245  # disjoint from corpus and channel model
N_ROOMS = 12
N_BABBLE = 4
"""Talkers mixed into one clip's babble copy."""
N_TALKERS = 16
"""Babble talkers synthesised for deployments (:func:`babble_talkers`)."""
MIN_SECONDS = 0.1


@lru_cache(maxsize=1)
def _rooms() -> tuple[Room, ...]:
    return tuple(room_impulse_responses(N_ROOMS, np.random.default_rng(ROOM_SEED)))


def channel_copies(
    wave: np.ndarray, key: str, babble_sources: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """The clip ``wave`` (16 kHz mono) through each of :data:`CHANNELS`, in that order.

    ``key`` seeds each channel's random draws (``crc32(f"{key}|{channel}")``), so the same clip
    and key give the same copies; ``babble_sources`` are the talkers of the babble copy.

    Example:
        >>> x = np.sin(np.arange(16000) * 0.05).astype(np.float32)
        >>> talkers = [np.sin(np.arange(16000) * f).astype(np.float32) for f in (0.03, 0.07)]
        >>> copies = channel_copies(x, "clip-1", talkers)
        >>> len(copies), all(c.ndim == 1 for c in copies)
        (7, True)
    """
    signal = np.asarray(wave, dtype=np.float32)
    if signal.ndim != 1 or signal.size < MIN_SECONDS * 16000:
        raise InvalidInputError(
            f"an enrollment clip to copy must be mono 16 kHz audio of >= {MIN_SECONDS} s, got "
            f"shape {signal.shape}"
        )
    if not babble_sources:
        raise InvalidInputError("the babble copy needs at least one talker (babble_sources)")
    out = []
    for name in CHANNELS:
        rng = np.random.default_rng([CONDITION_SEED, zlib.crc32(f"{key}|{name}".encode())])
        copy, _ = apply_condition(signal, name, rng, babble_sources=babble_sources, rooms=_rooms())
        out.append(copy.astype(np.float32))
    return out


def enrollment_copies(
    wave: np.ndarray, key: str, talkers: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """:func:`channel_copies` of one enrollment clip, its babble from :data:`N_BABBLE` of
    ``talkers`` picked by ``key`` (all of them when there are fewer)."""
    if not talkers:
        raise InvalidInputError("enrollment copies need babble talkers (babble_talkers())")
    rng = np.random.default_rng([BABBLE_SEED, zlib.crc32(key.encode())])
    picked = rng.choice(len(talkers), min(N_BABBLE, len(talkers)), replace=False)
    return channel_copies(wave, key, [talkers[i] for i in picked])


def embedded_copies(
    waves: Sequence[np.ndarray],
    keys: Sequence[str],
    embed: Callable[[list[np.ndarray]], np.ndarray],
    talkers: Sequence[np.ndarray],
) -> np.ndarray:
    """Embeddings ``(N, C, D)`` of the :func:`enrollment_copies` of each clip (``keys`` seed
    them), ``embed`` a frontend's ``embed``: what ``fit(..., copies=)`` takes, reshaped to
    ``(N * C, D)`` with each clip's label repeated ``C`` times.

    Example:
        >>> x = np.sin(np.arange(16000) * 0.05).astype(np.float32)
        >>> talkers = [np.sin(np.arange(16000) * 0.03).astype(np.float32)]
        >>> energy = lambda waves: np.array([[np.mean(w**2), w.size] for w in waves])
        >>> embedded_copies([x, x], ["a", "b"], energy, talkers).shape
        (2, 7, 2)
    """
    made = [c for w, k in zip(waves, keys, strict=True) for c in enrollment_copies(w, k, talkers)]
    emb = np.asarray(embed(made), dtype=np.float32)
    return emb.reshape(len(waves), len(CHANNELS), emb.shape[-1])


def babble_talkers(
    n_talkers: int = N_TALKERS, cache_dir: str | Path | None = None
) -> list[np.ndarray]:
    """One sentence each of ``n_talkers`` espeak-ng variant voices (16 kHz float32), the
    talkers of the babble copies; synthesised once and cached under the cache root
    (``copies/babble-v1-<n>.npz``). The voices are drawn with their own seed, so their pitch
    and rate differ from the default pool's voices of the same language.

    Raises:
        TTSError: espeak-ng is not installed (it is a dependency of the default pool too).
    """
    if n_talkers < 1:
        raise InvalidInputError(f"n_talkers must be >= 1, got {n_talkers}")
    path = cache_root(cache_dir) / "copies" / f"babble-v1-{n_talkers}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                return [data[f"t{i}"].astype(np.float32) / 32767.0 for i in range(len(data.files))]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            logger.warning("unreadable babble talkers cache %s (%s); synthesising again", path, exc)
    waves = []
    for i, spec in enumerate(pool_voices(n_talkers, seed=BABBLE_SEED)):
        texts = load_texts(spec.language)
        try:
            waves.append(synthesize(spec, texts[(7 * i) % len(texts)]))
        except TTSError:
            logger.warning("babble talker %s failed; skipping it", spec.speaker)
    if not waves:
        raise TTSError("no babble talker could be synthesised: install espeak-ng")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    pcm = {f"t{i}": (np.clip(w, -1, 1) * 32767).astype("<i2") for i, w in enumerate(waves)}
    np.savez(tmp, **pcm)
    tmp.replace(path)
    return [pcm[f"t{i}"].astype(np.float32) / 32767.0 for i in range(len(waves))]
