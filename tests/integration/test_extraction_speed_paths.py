"""The fast extraction paths give the embeddings of the reference path: CAM++ on onnxruntime
agrees with torch on real speech, and worker processes give what one process gives."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from speakerrpl.audio import load_audio
from speakerrpl.embeddings import extract_embeddings
from speakerrpl.errors import InvalidInputError
from speakerrpl.frontends import get_frontend
from speakerrpl.frontends.campplus_ort import MIN_COSINE, agreement, ort_available

pytestmark = pytest.mark.skipif(not ort_available(), reason="needs the onnx extra")


@pytest.fixture(scope="module")
def real_waves(pocketsphinx_speakers: dict[str, list[Path]]) -> list[np.ndarray]:
    return [load_audio(f) for files in pocketsphinx_speakers.values() for f in files]


@pytest.fixture(scope="module")
def engines() -> tuple:
    on_ort = get_frontend("campplus", num_threads=1)  # "auto": onnxruntime when it agrees
    on_torch = get_frontend("campplus", num_threads=1, backend="torch")
    return on_ort, on_torch


def test_onnxruntime_is_the_cpu_default_and_agrees_with_torch(
    engines: tuple, real_waves: list[np.ndarray]
) -> None:
    on_ort, on_torch = engines
    assert (on_ort.backend, on_torch.backend) == ("onnxruntime", "torch")
    a, b = on_ort.embed(real_waves), on_torch.embed(real_waves)
    assert agreement(a, b) >= MIN_COSINE
    assert not np.array_equal(a, b)  # really two engines, not one run twice
    # agreeing engines share the cache entries: the key is what the embeddings are
    assert on_ort.cache_key() == on_torch.cache_key()


def test_backend_is_validated_and_survives_pickling(engines: tuple) -> None:
    with pytest.raises(InvalidInputError, match="backend"):
        get_frontend("campplus", backend="tensorflow")
    copy = pickle.loads(pickle.dumps(engines[0]))
    assert copy.backend == "onnxruntime"
    wave = np.random.default_rng(0).uniform(-0.1, 0.1, 16000).astype(np.float32)
    np.testing.assert_array_equal(copy.embed([wave]), engines[0].embed([wave]))


def test_worker_processes_give_the_single_process_embeddings_and_failures(
    tmp_path: Path, pocketsphinx_speakers: dict[str, list[Path]], engines: tuple
) -> None:
    root = tmp_path / "corpus"
    for name, files in pocketsphinx_speakers.items():
        (root / name).mkdir(parents=True)
        for f in files:
            shutil.copy(f, root / name / f.name)
    (root / "cards" / "broken.wav").write_text("not audio")
    one, fail_one = extract_embeddings(
        root, engines[0], cache_dir=tmp_path / "c1", workers=1, batch_size=3
    )
    two, fail_two = extract_embeddings(
        root, engines[0], cache_dir=tmp_path / "c2", workers=2, batch_size=3
    )
    assert one.utt_ids.tolist() == two.utt_ids.tolist() and len(one) == 10
    np.testing.assert_allclose(one.embeddings, two.embeddings, atol=1e-6)
    assert [(f.utt_id, f.reason) for f in fail_one] == [(f.utt_id, f.reason) for f in fail_two]
    assert len(fail_two) == 1 and "AudioReadError" in fail_two[0].reason
    assert len(list((tmp_path / "c2").rglob("*.npy"))) == 10  # every result cached
