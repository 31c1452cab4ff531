"""Per-speaker operations behind the REST API: verify, details, export/import, request floors.

Thin functions over :class:`~speakerrpl.service.engine.SpeakerEngine` and its registry; every
user-facing decision goes through :func:`speakerrpl.decisions.decision_of`.

A *voiceprint* export is a JSON document (``format: speakerrpl-voiceprint``, version 1) with one
person's enrollment embeddings (float32, little-endian, base64), those of each clip's channel
copies when every clip has them (``copies_per_clip``, ``copies``: multi-condition enrollment,
:mod:`speakerrpl.synth.enrollment_copies`), the frontend that made them and the versions, so it
can be imported into another registry built with the same frontend. It is
biometric data: the REST service only hands it to callers with the API key.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import numpy as np

from speakerrpl import __version__
from speakerrpl.decisions import UNKNOWN, decision_of
from speakerrpl.errors import InvalidInputError, ModelMismatchError, SpeakerNotFoundError

__all__ = [
    "FORMAT",
    "apply_request_threshold",
    "export_voiceprint",
    "import_voiceprint",
    "speaker_detail",
    "threshold_info",
    "verify",
]

FORMAT = "speakerrpl-voiceprint"
FORMAT_VERSION = 1
_MAX_EMBEDDINGS = 256
_MAX_COPIES_PER_CLIP = 16


def verify(engine: Any, name: str, wave: np.ndarray) -> dict[str, Any]:
    """Is ``wave`` speaker ``name``? ``accepted`` when its score for ``name`` passes the
    model's rule (:meth:`~speakerrpl.service.models.LoadedModel.decide`: per clip for a
    quality-aware identifier); ``confidence`` and ``threshold`` on the scale of
    :mod:`speakerrpl.decisions`."""
    model = engine.model()
    if name not in model.classes:
        raise SpeakerNotFoundError(f"no enrolled speaker named {name!r}")
    with engine.work_slot():
        emb = engine.embed([wave])
    score = float(model.scores(emb)[0][list(model.classes).index(name)])
    accepted, conf = model.decide(emb, np.array([score]))
    ident: dict[str, Any] = {"speaker": name if bool(accepted[0]) else UNKNOWN, "score": score,
                             "threshold": model.threshold}  # fmt: skip
    if model.calibrated and conf is not None:
        ident["confidence"] = float(conf[0])
        ident["confidence_threshold"] = model.confidence_threshold
    decision = decision_of(ident)
    return {"name": name, "accepted": decision.known, "confidence": decision.confidence,
            "threshold": decision.threshold, "model_version": model.version}  # fmt: skip


def apply_request_threshold(
    results: list[dict[str, Any]], threshold: float | None, min_confidence: float | None
) -> list[dict[str, Any]]:
    """Re-decide identification results with a per-request threshold and/or confidence floor.

    ``threshold`` (raw score scale) replaces the registry's decision; without it each
    result keeps the model's own (per clip for a quality-aware identifier). ``min_confidence``
    (the scale of :func:`speakerrpl.decisions.decision_of`: calibrated [0, 1] when the model
    has it) can only make acceptance stricter. Each result gets its ``confidence``.

    Example:
        >>> r = [{"speaker": "bob", "best_match": "bob", "score": 0.6, "threshold": 0.5}]
        >>> apply_request_threshold(r, None, 0.7)[0]["speaker"]
        '<unknown>'
    """
    for value, what in ((threshold, "threshold"), (min_confidence, "min_confidence")):
        if value is not None and not np.isfinite(value):
            raise InvalidInputError(f"{what} must be a finite number, got {value}")
    out = []
    for res in results:
        thr = float(res["threshold"]) if threshold is None else float(threshold)
        confidence = decision_of(res).confidence
        if threshold is None:  # the model's decision: it named its best match
            accepted = res.get("best_match") is not None and res["speaker"] == res["best_match"]
        else:
            accepted = float(res["score"]) >= thr
        accepted = accepted and (min_confidence is None or confidence >= float(min_confidence))
        best = res.get("best_match")
        speaker = best if accepted and best is not None else UNKNOWN
        out.append({**res, "speaker": speaker, "threshold": thr, "confidence": confidence})
    return out


def speaker_detail(engine: Any, name: str) -> dict[str, Any]:
    """``name``, ``created``, ``n_enrollments`` and its ``clips`` (id, source, created,
    has_audio, n_copies): no embeddings."""
    clips = engine.registry.enrollments(name)
    created = next(s["created"] for s in engine.speakers() if s["name"] == name)
    return {"name": name, "created": created, "n_enrollments": len(clips),
            "clips": [{k: c[k] for k in ("id", "source", "created", "has_audio", "n_copies")}
                      for c in clips]}  # fmt: skip


def threshold_info(engine: Any) -> dict[str, Any]:
    """The acceptance threshold in force and how it was set (pinned value or target FAR)."""
    model = engine.model()
    pinned = engine.registry.get_setting("threshold") or None
    far = engine.registry.get_setting("far") or None
    return {
        "threshold": model.threshold if np.isfinite(model.threshold) else None,
        "pinned": pinned is not None,
        "far": float(far) if far else engine.settings.far,
        "model_version": model.version,
        "kind": model.kind,
    }


def export_voiceprint(engine: Any, name: str) -> dict[str, Any]:
    """One person's voiceprint as a JSON-ready document (see the module docstring)."""
    clips = engine.registry.enrollments(name, with_embeddings=True)
    emb = np.stack([c["embedding"] for c in clips]).astype("<f4")
    frontends = sorted({str(c["frontend"]) for c in clips})
    created = next(s["created"] for s in engine.speakers() if s["name"] == name)
    copies: dict[str, Any] = {}
    counts = {0 if c["copies"] is None else len(c["copies"]) for c in clips}
    if len(counts) == 1 and 0 not in counts:  # every clip has the same number of copies
        stacked = np.concatenate([c["copies"] for c in clips]).astype("<f4")
        copies = {"copies_per_clip": counts.pop(),
                  "copies": base64.b64encode(stacked.tobytes()).decode("ascii")}  # fmt: skip
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "created": created,
        "frontend": frontends[0],
        "dim": int(emb.shape[1]),
        "count": int(emb.shape[0]),
        "embeddings": base64.b64encode(emb.tobytes()).decode("ascii"),
        "sources": [c["source"] for c in clips],
        **copies,
        "versions": {"speakerrpl": __version__, "format": FORMAT_VERSION},
    }


def _embeddings(doc: Mapping[str, Any]) -> np.ndarray:
    try:
        raw = base64.b64decode(str(doc["embeddings"]), validate=True)
        count, dim = int(doc["count"]), int(doc["dim"])
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise InvalidInputError(f"malformed voiceprint: {exc}") from None
    if not (0 < count <= _MAX_EMBEDDINGS and 0 < dim <= 4096) or len(raw) != count * dim * 4:
        raise InvalidInputError(
            f"malformed voiceprint: {len(raw)} bytes of embeddings do not hold "
            f"count={count} x dim={dim} float32 (count at most {_MAX_EMBEDDINGS})"
        )
    emb = np.frombuffer(raw, dtype="<f4").reshape(count, dim)
    if not np.isfinite(emb).all():
        raise InvalidInputError("malformed voiceprint: embeddings hold NaN or infinity")
    return emb


def _copies(doc: Mapping[str, Any], count: int, dim: int) -> np.ndarray | None:
    """The (count, C, dim) channel copies of a voiceprint, or ``None`` when it has none."""
    if doc.get("copies") is None and doc.get("copies_per_clip") is None:
        return None
    try:
        per_clip = int(doc["copies_per_clip"])
        raw = base64.b64decode(str(doc["copies"]), validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise InvalidInputError(f"malformed voiceprint copies: {exc}") from None
    if not 0 < per_clip <= _MAX_COPIES_PER_CLIP or len(raw) != count * per_clip * dim * 4:
        raise InvalidInputError(
            f"malformed voiceprint copies: {len(raw)} bytes do not hold {count} clips x "
            f"copies_per_clip={per_clip} x dim={dim} float32 (at most {_MAX_COPIES_PER_CLIP} "
            "per clip)"
        )
    copies = np.frombuffer(raw, dtype="<f4").reshape(count, per_clip, dim)
    if not np.isfinite(copies).all():
        raise InvalidInputError("malformed voiceprint: copies hold NaN or infinity")
    return copies


def import_voiceprint(engine: Any, name: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    """Enroll ``name`` from an exported voiceprint (same frontend as this registry), refit."""
    if doc.get("format") != FORMAT or doc.get("format_version") != FORMAT_VERSION:
        raise InvalidInputError(
            f"not a {FORMAT} version {FORMAT_VERSION} document "
            f"(format={doc.get('format')!r}, format_version={doc.get('format_version')!r})"
        )
    emb = _embeddings(doc)
    copies = _copies(doc, *emb.shape)
    ours = engine.registry.snapshot().frontend or engine.frontend.name
    if doc.get("frontend") != ours:
        raise ModelMismatchError(
            f"the voiceprint holds {doc.get('frontend')!r} embeddings; this registry uses {ours!r}"
        )
    sources = doc.get("sources")
    if not isinstance(sources, list) or len(sources) != len(emb):
        sources = [None] * len(emb)
    labels = [f"imported:{s}" if s else "imported" for s in sources]
    return engine.enroll_embeddings(name, emb, labels, copies=copies)
