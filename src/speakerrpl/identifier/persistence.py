"""Save / load of a fitted identifier: ``config.json`` + ``weights.safetensors``, never pickle.

The directory form is a thin layer over an in-memory one: :func:`identifier_files` gives the
two files as bytes and :func:`identifier_from_files` rebuilds from them, so a caller that keeps
models elsewhere (the service's SQLite registry) never writes model data to a temporary file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from speakerrpl.errors import ModelLoadError, ModelMismatchError
from speakerrpl.identifier.blend import CosineBlend
from speakerrpl.identifier.channel import ChannelCompensation
from speakerrpl.identifier.decision import Decision
from speakerrpl.identifier.settings import IdentifierSettings, build_ensemble

if TYPE_CHECKING:
    from speakerrpl.identifier.estimator import OpenSetSpeakerIdentifier

CONFIG_FILE, WEIGHTS_FILE = "config.json", "weights.safetensors"
FORMAT = 4
#: older formats still read: 2 (before the cosine blend) loads with ``cosine_blend=False``,
#: 2 and 3 (before channel compensation) with ``channel_compensation=False``
READABLE_FORMATS = (2, 3, FORMAT)


def identifier_files(clf: OpenSetSpeakerIdentifier) -> dict[str, bytes]:
    """The saved form of a fitted identifier as ``{file name: bytes}`` (nothing written)."""
    from safetensors.torch import save

    import speakerrpl

    tensors: dict[str, torch.Tensor] = {
        "extra.mean": torch.as_tensor(clf.mean_, dtype=torch.float32),
        "extra.members": torch.as_tensor(clf.members_, dtype=torch.int64),
        "extra.zmean": torch.as_tensor(clf.zstats_[0]),
        "extra.zstd": torch.as_tensor(clf.zstats_[1]),
    }
    if hasattr(clf, "centroids_"):
        tensors["extra.centroids"] = torch.as_tensor(clf.centroids_)
    if hasattr(clf, "compensation_"):  # saved with the model: a later shipped one may differ
        tensors["extra.channel_mean"] = torch.as_tensor(clf.compensation_.mean)
        tensors["extra.channel_transform"] = torch.as_tensor(clf.compensation_.transform)
    if clf.ensemble_ is None:
        if hasattr(clf, "cohort_"):
            tensors["extra.cohort"] = torch.as_tensor(clf.cohort_)
            tensors["extra.cohort_mean"] = torch.as_tensor(clf.cohort_stats_[0])
            tensors["extra.cohort_std"] = torch.as_tensor(clf.cohort_stats_[1])
    else:
        tensors.update({f"ensemble.{k}": v for k, v in clf.ensemble_.state_dict().items()})
    weights = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    config = {
        "format": FORMAT,
        "speakerrpl_version": speakerrpl.__version__,
        "torch_version": torch.__version__,
        "frontend": clf.settings.frontend,
        "dim": clf.dim_,
        "method": clf.settings.method,
        "classes": clf.classes_,
        "training_classes": clf.training_classes_,
        "threshold": clf.threshold_,
        "confidence_threshold": clf.confidence_threshold_,
        "decision": clf.decision_.to_dict(),
        "blend": clf.blend_.to_dict() if hasattr(clf, "blend_") else None,
        "enrollment_condition": (
            np.asarray(clf.enrollment_condition_, dtype=float).tolist()
            if hasattr(clf, "enrollment_condition_")
            else None
        ),
        "enrollment_copies": bool(getattr(clf, "copies_used_", False)),
        "settings": clf.settings.to_dict(),
        "warm_updates": int(getattr(clf, "n_updates_", 0)),
        "update_mode": str(getattr(clf, "update_mode_", "cold")),
    }
    return {CONFIG_FILE: json.dumps(config, indent=2).encode("utf-8"), WEIGHTS_FILE: weights}


def save_identifier(clf: OpenSetSpeakerIdentifier, directory: Path) -> Path:
    """Write a fitted identifier to ``directory`` (created if needed) and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in identifier_files(clf).items():
        (directory / name).write_bytes(data)
    return directory


def _parse(
    files: Mapping[str, bytes], where: str
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors.torch import load

    if CONFIG_FILE not in files or WEIGHTS_FILE not in files:
        raise ModelLoadError(f"{where} holds no saved identifier ({CONFIG_FILE}, {WEIGHTS_FILE})")
    try:
        config = json.loads(files[CONFIG_FILE].decode("utf-8"))
        tensors = load(bytes(files[WEIGHTS_FILE]))
    except Exception as exc:  # safetensors raises its own SafetensorError, not a ValueError
        raise ModelLoadError(f"cannot read the identifier in {where}: {exc}") from exc
    if not isinstance(config, dict):
        raise ModelLoadError(f"cannot read the identifier in {where}: config is not an object")
    return config, tensors


def _read(directory: Path) -> dict[str, bytes]:
    try:
        return {
            name: (directory / name).read_bytes()
            for name in (CONFIG_FILE, WEIGHTS_FILE)
            if (directory / name).is_file()
        }
    except OSError as exc:
        raise ModelLoadError(f"cannot read the identifier in {directory}: {exc}") from exc


def load_identifier(
    cls: type[OpenSetSpeakerIdentifier], directory: Path, frontend: str | None, dim: int | None
) -> OpenSetSpeakerIdentifier:
    """Rebuild an identifier saved by :func:`save_identifier`, checking frontend and dimension."""
    return identifier_from_files(cls, _read(directory), frontend, dim, where=str(directory))


def identifier_from_files(
    cls: type[OpenSetSpeakerIdentifier],
    files: Mapping[str, bytes],
    frontend: str | None = None,
    dim: int | None = None,
    where: str = "the stored model",
) -> OpenSetSpeakerIdentifier:
    """Rebuild an identifier from :func:`identifier_files` output (from memory, no files)."""
    config, tensors = _parse(files, where)
    try:
        return _rebuild(cls, config, tensors, frontend, dim, where)
    except (ModelMismatchError, ModelLoadError):
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"malformed identifier config in {where}: {exc!r}") from exc


def _rebuild(
    cls: type[OpenSetSpeakerIdentifier],
    config: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    frontend: str | None,
    dim: int | None,
    directory: str,
) -> OpenSetSpeakerIdentifier:
    if config.get("format") not in READABLE_FORMATS:
        raise ModelMismatchError(
            f"saved format {config.get('format')!r}, expected one of {READABLE_FORMATS} (models "
            "saved before the calibrated confidence existed must be refitted)"
        )
    if config["format"] == 2:  # saved before the blend existed: scored by the adapters alone
        config["settings"] = {**config["settings"], "cosine_blend": False}
    if config["format"] in (2, 3):  # saved before channel compensation existed
        config["settings"] = {**config["settings"], "channel_compensation": False}
    if frontend is not None and config["frontend"] != frontend:
        raise ModelMismatchError(
            f"identifier in {directory} was fitted on frontend {config['frontend']!r}, "
            f"not {frontend!r}"
        )
    if dim is not None and config["dim"] != dim:
        raise ModelMismatchError(
            f"identifier in {directory} expects {config['dim']}-d embeddings, not {dim}-d"
        )
    settings = IdentifierSettings.from_dict(config["settings"])
    clf = cls(settings)
    clf._device = clf._check_device(settings.device)
    clf.dim_, clf.classes_ = int(config["dim"]), list(config["classes"])
    clf.training_classes_ = list(config["training_classes"])
    clf.decision_ = Decision.from_dict(config["decision"])
    clf.copies_used_ = bool(config.get("enrollment_copies", False))  # absent before copies
    clf.threshold_ = clf.decision_.score_threshold
    clf.confidence_threshold_ = clf.decision_.confidence_threshold
    clf.n_updates_ = int(config.get("warm_updates", 0))
    clf.update_mode_ = str(config.get("update_mode", "cold"))
    clf.mean_ = tensors.pop("extra.mean").numpy()
    clf.members_ = tensors.pop("extra.members").numpy()
    clf.zstats_ = (tensors.pop("extra.zmean").numpy(), tensors.pop("extra.zstd").numpy())
    if "extra.centroids" in tensors:
        clf.centroids_ = tensors.pop("extra.centroids").numpy()
    if "extra.channel_mean" in tensors:
        clf.compensation_ = ChannelCompensation(
            tensors.pop("extra.channel_mean").numpy(),
            tensors.pop("extra.channel_transform").numpy(),
        )
    if config.get("blend") is not None:
        clf.blend_ = CosineBlend.from_dict(config["blend"])
    if config.get("enrollment_condition") is not None:  # absent before it was kept
        clf.enrollment_condition_ = np.atleast_2d(
            np.asarray(config["enrollment_condition"], dtype=np.float64)
        )
    if not settings.method_spec.trains:
        if "extra.cohort" in tensors:
            clf.cohort_ = tensors.pop("extra.cohort").numpy()
            clf.cohort_stats_ = (
                tensors.pop("extra.cohort_mean").numpy(),
                tensors.pop("extra.cohort_std").numpy(),
            )
        clf.ensemble_ = None
        return clf
    ens, _ = build_ensemble(settings, clf.dim_, len(clf.training_classes_))
    state = {k.removeprefix("ensemble."): v for k, v in tensors.items()}
    try:
        ens.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"weights in {directory} do not match their config: {exc}") from exc
    clf.ensemble_ = ens.to(clf._device).eval()
    return clf


__all__ = [
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "identifier_files",
    "identifier_from_files",
    "load_identifier",
    "save_identifier",
]
