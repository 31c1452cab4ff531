"""The onnx frontend (CAM++ export parity) and the wavlm frontend (tiny saved model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speakerrpl.audio import load_audio
from speakerrpl.errors import ModelLoadError
from speakerrpl.frontends import get_frontend
from speakerrpl.frontends.base import Frontend
from speakerrpl.frontends.fbank import FbankConfig


@pytest.fixture(scope="module")
def campplus_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    from speakerrpl.frontends.onnx_model import export_campplus_onnx

    return export_campplus_onnx(tmp_path_factory.mktemp("onnx") / "campplus.onnx")


def test_onnx_campplus_matches_torch(
    campplus_onnx: Path, campplus: Frontend, pocketsphinx_speakers: dict[str, list[Path]]
) -> None:
    frontend = get_frontend("onnx", model_path=campplus_onnx, num_threads=1)
    assert frontend.dim == 192 and frontend.config()["input_kind"] == "fbank"
    assert frontend.config()["fbank"] == FbankConfig().to_dict()  # read from the metadata
    waves = [load_audio(files[i]) for files in pocketsphinx_speakers.values() for i in (1, 2)]
    waves.append(waves[0][:7000])  # a short one, alone in its length group
    ours, reference = frontend.embed(waves), campplus.embed(waves)
    cosines = (ours * reference).sum(1) / np.linalg.norm(ours, axis=1)
    assert (cosines / np.linalg.norm(reference, axis=1)).min() >= 0.9999
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_onnx_options_and_errors(campplus_onnx: Path, tmp_path: Path) -> None:
    wave = np.random.default_rng(0).uniform(-0.2, 0.2, 16000).astype(np.float32)
    default = get_frontend("onnx", model_path=campplus_onnx, num_threads=1)
    hamming = get_frontend(
        "onnx", model_path=campplus_onnx, fbank=FbankConfig(window="hamming"), num_threads=1
    )
    assert hamming.cache_key() != default.cache_key()
    assert not np.allclose(hamming.embed([wave]), default.embed([wave]), atol=1e-3)
    with pytest.raises(ModelLoadError, match="does not exist"):
        get_frontend("onnx", model_path=tmp_path / "none.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(ModelLoadError, match="cannot load"):
        get_frontend("onnx", model_path=tmp_path / "junk.onnx")
    with pytest.raises(ModelLoadError, match=r"expected \(B, T, bins\)"):
        get_frontend("onnx", model_path=campplus_onnx, input_kind="wave")


def test_wavlm_tiny_saved_model(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers", reason="the wavlm extra is not installed")
    import torch

    config = transformers.WavLMConfig(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=24,
        conv_dim=(8, 8, 8),
        conv_stride=(5, 2, 2),
        conv_kernel=(10, 3, 3),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        tdnn_dim=(8, 8),
        tdnn_kernel=(3, 1),
        tdnn_dilation=(1, 1),
        xvector_output_dim=12,
    )
    torch.manual_seed(0)
    model = transformers.WavLMForXVector(config).eval()
    model.save_pretrained(tmp_path / "tiny")
    extractor = transformers.Wav2Vec2FeatureExtractor(do_normalize=True)
    extractor.save_pretrained(tmp_path / "tiny")
    frontend = get_frontend("wavlm", model_dir=tmp_path / "tiny", num_threads=1)
    assert frontend.dim == 12 and frontend.normalize
    rng = np.random.default_rng(0)
    waves = [rng.uniform(-0.3, 0.3, n).astype(np.float32) for n in (8000, 12000, 8000)]
    ours = frontend.embed(waves)
    assert ours.shape == (3, 12)
    for wave, row in zip(waves, ours, strict=True):
        inputs = extractor(wave, sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            expected = model(inputs["input_values"]).embeddings[0].numpy()
        np.testing.assert_allclose(row, expected, atol=1e-4, rtol=1e-4)
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        get_frontend("wavlm", model_dir=tmp_path)
