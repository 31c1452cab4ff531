"""``transformers.WavLMForXVector`` (e.g. microsoft/wavlm-base-plus-sv) from a local directory.

The directory is what ``save_pretrained`` writes (``config.json`` + weights), optionally with
a ``preprocessor_config.json`` of a ``Wav2Vec2FeatureExtractor``; nothing is downloaded.
Inputs are normalised to zero mean and unit variance per utterance when the preprocessor asks
for it (the default without one). Utterances of different lengths run in separate batches, so
no padding ever reaches the model.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from speakerrpl._optional import require
from speakerrpl.errors import InvalidInputError, ModelLoadError
from speakerrpl.frontends.base import Frontend, embed_by_length, torch_threads

logger = logging.getLogger(__name__)

__all__ = ["WavLMFrontend"]


class WavLMFrontend(Frontend):
    """WavLM x-vector embeddings (dimension from the model config, 512 for wavlm-base-plus-sv).

    Args:
        model_dir: local directory written by ``WavLMForXVector.save_pretrained``.
        device: ``"cpu"`` or ``"cuda"``.
        normalize: per-utterance zero-mean/unit-variance input; default: the directory's
            ``preprocessor_config.json`` ``do_normalize``, else True.
        batch_size: most equal-length waveforms per forward pass.
        num_threads: torch threads used while embedding (None: torch's setting).

    Example:
        >>> import tempfile
        >>> from transformers import WavLMConfig, WavLMForXVector
        >>> cfg = WavLMConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        ...     intermediate_size=16, conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8),
        ...     num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        ...     tdnn_dim=(8, 8), tdnn_kernel=(3, 1), tdnn_dilation=(1, 1), xvector_output_dim=12)
        >>> directory = tempfile.mkdtemp()
        >>> WavLMForXVector(cfg).save_pretrained(directory)
        >>> frontend = WavLMFrontend(directory)
        >>> frontend.embed([np.zeros(8000, dtype=np.float32) + 0.1]).shape
        (1, 12)
    """

    name = "wavlm"

    def __init__(
        self,
        model_dir: str | Path,
        device: str = "cpu",
        normalize: bool | None = None,
        batch_size: int = 8,
        num_threads: int | None = None,
    ) -> None:
        super().__init__(device)
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise ModelLoadError(
                f"{self.model_dir} is not a saved transformers model (no config.json); "
                "expected the output of WavLMForXVector.save_pretrained"
            )
        self.normalize = self._read_normalize() if normalize is None else normalize
        self.batch_size, self.num_threads = batch_size, num_threads
        transformers = require("transformers", extra="wavlm", purpose="the wavlm frontend")
        try:
            model = transformers.WavLMForXVector.from_pretrained(
                str(self.model_dir), local_files_only=True
            )
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{self.model_dir}: cannot load WavLMForXVector ({exc})") from exc
        self.model = model.eval().to(self.device)
        self._dim = int(model.config.xvector_output_dim)
        self._fingerprint = self._weights_fingerprint()

    def _read_normalize(self) -> bool:
        path = self.model_dir / "preprocessor_config.json"
        if not path.is_file():
            return True
        return bool(json.loads(path.read_text()).get("do_normalize", True))

    def _weights_fingerprint(self) -> list[tuple[str, int, float]]:
        files = sorted(self.model_dir.glob("*.safetensors")) + sorted(self.model_dir.glob("*.bin"))
        return [(f.name, f.stat().st_size, f.stat().st_mtime) for f in files]

    @property
    def dim(self) -> int:
        """``xvector_output_dim`` of the model config."""
        return self._dim

    def config(self) -> dict[str, Any]:
        """Name, model directory and weight files, normalisation."""
        return {
            "name": self.name,
            "model_dir": str(self.model_dir.resolve()),
            "weights": self._fingerprint,
            "normalize": self.normalize,
        }

    def _prepare(self, wave: np.ndarray) -> np.ndarray:
        if self.normalize:
            wave = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)
        return wave.astype(np.float32)

    def _embed(self, waves: list[np.ndarray]) -> np.ndarray:
        import torch

        def run(batch: np.ndarray) -> np.ndarray:
            result = self.model(torch.from_numpy(batch).to(self.device))
            return result.embeddings.float().cpu().numpy()

        prepared = [self._prepare(wave) for wave in waves]
        with torch.inference_mode(), torch_threads(self.num_threads):
            return embed_by_length(prepared, self.batch_size, self.dim, run)
