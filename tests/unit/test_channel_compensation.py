"""Channel compensation (WCCN): what it computes, when it is on, and that it survives a save."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from speakerrpl import OpenSetSpeakerIdentifier
from speakerrpl.errors import InvalidInputError, ModelLoadError
from speakerrpl.identifier.channel import (
    ChannelCompensation,
    fit_wccn,
    shipped_compensation,
)
from speakerrpl.identifier.settings import IdentifierSettings
from speakerrpl.identifier.tails import COMPENSATED_TAILS, TAILS, table_tail

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CAMPP = 192
FAST = {"n_models": 3, "epochs": 10, "batch_size": 8, "min_steps": 0, "hidden": (32,),
        "out_dim": 8, "n_calibration": 8}  # fmt: skip


def _channel_data(
    rng: np.random.Generator, n_speakers: int, dim: int, nuisance: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Speakers seen through 4 channels; each channel shifts along its own fixed direction."""
    voices = rng.normal(size=(n_speakers, dim))
    channels = nuisance * rng.normal(size=(4, dim))
    x = voices[:, None, :] + channels[None, :, :] + 0.2 * rng.normal(size=(n_speakers, 4, dim))
    spk = np.repeat(np.arange(n_speakers), 4)
    chan = np.tile(np.arange(4), n_speakers)
    return x.reshape(-1, dim).astype(np.float32), spk, chan


def _cross_channel_accuracy(x: np.ndarray, spk: np.ndarray, chan: np.ndarray) -> float:
    """Share of channel-1..3 utterances whose closest channel-0 utterance is the same speaker."""
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    enroll, test = chan == 0, chan != 0
    best = (xn[test] @ xn[enroll].T).argmax(axis=1)
    return float(np.mean(spk[enroll][best] == spk[test]))


def test_wccn_learnt_on_other_speakers_removes_channel_shifts() -> None:
    rng = np.random.default_rng(0)
    dim = 24
    voices_train = rng.normal(size=(60, dim))
    channel_dirs = 3.0 * rng.normal(size=(4, dim))  # the same channels for both speaker sets

    def seen(voices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = voices[:, None, :] + channel_dirs[None] + 0.2 * rng.normal(size=(len(voices), 4, dim))
        n = len(voices)
        return x.reshape(-1, dim), np.repeat(np.arange(n), 4), np.tile(np.arange(4), n)

    xtr, ytr, _ = seen(voices_train)
    xte, yte, cte = seen(rng.normal(size=(40, dim)))
    model = fit_wccn(xtr, ytr, shrinkage=0.05)
    before = _cross_channel_accuracy(xte, yte, cte)
    after = _cross_channel_accuracy(model.apply(xte), yte, cte)
    assert before < 0.6 and after > 0.95


def test_wccn_matches_an_independent_shrunk_within_class_inverse() -> None:
    rng = np.random.default_rng(1)
    x, spk, _ = _channel_data(rng, 30, 8, nuisance=1.0)
    model = fit_wccn(x, spk, shrinkage=0.3)
    x64 = x.astype(np.float64)
    xn = x64 / np.linalg.norm(x64, axis=1, keepdims=True)
    resid = np.concatenate([xn[spk == s] - xn[spk == s].mean(0) for s in np.unique(spk)])
    sw = resid.T @ resid / len(xn)
    sw = 0.7 * sw + 0.3 * np.trace(sw) / 8 * np.eye(8)
    t = model.transform
    np.testing.assert_allclose(t @ t.T, np.linalg.inv(sw), rtol=1e-9)
    np.testing.assert_allclose(model.mean, xn.mean(0), atol=1e-7)


def test_bad_inputs_and_files_are_named() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10, 4))
    with pytest.raises(InvalidInputError, match="shrinkage"):
        fit_wccn(x, np.repeat([0, 1], 5), shrinkage=1.5)
    with pytest.raises(InvalidInputError, match="one group per embedding"):
        fit_wccn(x, np.arange(3))
    with pytest.raises(InvalidInputError, match=">= 2 groups"):
        fit_wccn(x, np.arange(10))
    with pytest.raises(InvalidInputError, match=r"\(N, 4\)"):
        fit_wccn(x, np.repeat([0, 1], 5)).apply(np.ones((2, 5)))


def test_a_saved_model_reads_back_and_a_broken_one_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x, spk, _ = _channel_data(rng, 10, 6, nuisance=1.0)
    model = fit_wccn(x, spk)
    model.save(tmp_path / "m.npz")
    again = ChannelCompensation.load(tmp_path / "m.npz")
    np.testing.assert_allclose(again.apply(x), model.apply(x), rtol=1e-5)
    np.savez(tmp_path / "bad.npz", mean=np.zeros(3), transform=np.eye(4))
    with pytest.raises(ModelLoadError, match="differ"):
        ChannelCompensation.load(tmp_path / "bad.npz")
    with pytest.raises(ModelLoadError, match="cannot read"):
        ChannelCompensation.load(tmp_path / "missing.npz")


def test_the_shipped_campplus_model_is_a_proper_whitening() -> None:
    model = shipped_compensation("campplus")
    assert model.dim == CAMPP and np.isfinite(model.transform).all()
    gram = model.transform.astype(np.float64) @ model.transform.T
    np.testing.assert_allclose(gram, gram.T, atol=1e-3 * np.abs(gram).max())
    assert np.linalg.eigvalsh(gram).min() > 0
    with pytest.raises(InvalidInputError, match="no channel model"):
        shipped_compensation("ge2e")


def test_default_compensates_campplus_sized_embeddings_only() -> None:
    assert IdentifierSettings().compensates and IdentifierSettings(method="cosine").compensates
    assert not IdentifierSettings.preset("rpl_v2_published").compensates
    assert not IdentifierSettings(frontend="ge2e").compensates
    assert not IdentifierSettings(method="logitnorm").compensates  # no tail measured with it
    with pytest.raises(InvalidInputError, match="needs CAM\\+\\+"):
        IdentifierSettings(frontend="ge2e", channel_compensation=True)
    rng = np.random.default_rng(4)
    x16 = rng.normal(size=(6, 16)).astype(np.float32)
    y = np.repeat(["a", "b"], 3)
    assert not OpenSetSpeakerIdentifier(method="cosine").fit(x16, y).compensated
    with pytest.raises(InvalidInputError, match="192-d"):
        OpenSetSpeakerIdentifier(method="cosine", channel_compensation=True).fit(x16, y)


def test_cosine_scores_whitened_embeddings_and_uses_the_compensated_tails() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(8, CAMPP)).astype(np.float32)
    y = np.repeat(["a", "b"], 4)
    clf = OpenSetSpeakerIdentifier(method="cosine").fit(x, y)
    raw = OpenSetSpeakerIdentifier(method="cosine", channel_compensation=False).fit(x, y)
    assert clf.compensated and not raw.compensated
    model = shipped_compensation("campplus")
    z = model.apply(x)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    cents = np.stack([z[y == c].mean(0) for c in ("a", "b")])
    cents /= np.linalg.norm(cents, axis=1, keepdims=True)
    np.testing.assert_allclose(clf.decision_function(x), z @ cents.T, atol=1e-5)
    assert clf.decision_.tail.params(2) == pytest.approx(COMPENSATED_TAILS["cosine"][2])
    assert raw.decision_.tail.params(2) == pytest.approx(TAILS["cosine"][2])
    assert table_tail(IdentifierSettings(method="cosine"), "compensated")[1] == "table"


def test_compensation_round_trips_and_format_3_models_load_without_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(12, CAMPP)).astype(np.float32)
    y = np.repeat(["a", "b", "c"], 4)
    clf = OpenSetSpeakerIdentifier(**FAST, method="softmax").fit(x, y)
    assert clf.compensated
    again = OpenSetSpeakerIdentifier.load(clf.save(tmp_path / "m"))
    assert again.compensated
    np.testing.assert_allclose(again.decision_function(x), clf.decision_function(x), rtol=1e-5)
    old = OpenSetSpeakerIdentifier(**FAST, method="softmax", channel_compensation=False).fit(x, y)
    path = old.save(tmp_path / "old")
    config = json.loads((path / "config.json").read_text())
    config["format"] = 3
    del config["settings"]["channel_compensation"]
    (path / "config.json").write_text(json.dumps(config))
    loaded = OpenSetSpeakerIdentifier.load(path)
    assert loaded.settings.channel_compensation is False and not loaded.compensated
    np.testing.assert_allclose(loaded.decision_function(x), old.decision_function(x), rtol=1e-6)
