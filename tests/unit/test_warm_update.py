"""OpenSetSpeakerIdentifier.update: warm household changes against cold fits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import speakerrpl.identifier.estimator as estimator
from speakerrpl.errors import InvalidInputError
from speakerrpl.identifier import OpenSetSpeakerIdentifier
from speakerrpl.identifier.incremental import MAX_WARM_UPDATES
from speakerrpl.nn.methods import METHODS

DIM = 24
SMALL = {"n_models": 3, "hidden": (48,), "out_dim": 16, "n_unknown": 6, "n_calibration": 6}
NAMES = [f"p{i}" for i in range(7)]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _voices(names: list[str], n: int, seed: int, noise: float = 0.35) -> tuple[np.ndarray, list]:
    rng = np.random.default_rng(seed)
    means = {name: rng.normal(size=DIM) for name in names}
    x = np.concatenate([means[v] + noise * rng.normal(size=(n, DIM)) for v in names])
    return x.astype(np.float32), [v for v in names for _ in range(n)]


def _pool() -> tuple[np.ndarray, np.ndarray]:
    x, y = _voices([f"pool{i}" for i in range(30)], 4, seed=99)
    return x, np.asarray(y)


def _household(names: list[str], n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Rows of ``names`` from one fixed set of voice means (enroll and test share means)."""
    rng = np.random.default_rng(0)
    means = {name: rng.normal(size=DIM) for name in NAMES}
    rng = np.random.default_rng(seed)
    x = np.concatenate([means[v] + 0.35 * rng.normal(size=(n, DIM)) for v in names])
    return x.astype(np.float32), [v for v in names for _ in range(n)]


def _fit(names: list[str], **kw: Any) -> OpenSetSpeakerIdentifier:
    x, y = _household(names, 4, seed=1)
    return OpenSetSpeakerIdentifier(**{**SMALL, **kw}).fit(x, y, pool=_pool())


TRAINED = [m for m, spec in METHODS.items() if spec.trains]


@pytest.mark.parametrize("method", TRAINED)
def test_warm_add_and_remove_for_every_trained_method(method: str) -> None:
    clf = _fit(NAMES[:4], method=method)
    x, y = _household(NAMES[:5], 4, seed=1)
    clf.update(x, y, pool=_pool(), steps=30)  # the toy's 16-d features need more than 10
    assert clf.update_mode_ == "warm" and clf.n_updates_ == 1
    assert clf.classes_ == NAMES[:5]
    test, _ = _household(NAMES[:5], 3, seed=2)
    named = clf.decision_function(test).argmax(axis=1)
    assert np.mean(np.asarray(clf.classes_)[named][-3:] == "p4") == 1.0  # the new person
    keep = [i for i, v in enumerate(y) if v != "p1"]
    clf.update(x[keep], [y[i] for i in keep], pool=_pool(), steps=30)
    assert clf.update_mode_ == "warm" and "p1" not in clf.classes_
    assert "p1" not in set(clf.predict(test).tolist())  # never named again
    assert clf.decision_.n_targets == 4  # recalibrated for the new K


def test_removed_person_is_rejected_and_others_still_named() -> None:
    clf = _fit(NAMES[:5])
    x, y = _household(NAMES[:5], 4, seed=1)
    keep = [i for i, v in enumerate(y) if v != "p4"]
    clf.update(x[keep], [y[i] for i in keep], pool=_pool())
    test, truth = _household(NAMES[:5], 6, seed=3)
    pred = clf.predict(test)
    gone = np.asarray(truth) == "p4"
    assert np.mean(pred[gone] == clf.settings.unknown_label) >= 0.8
    assert np.mean(pred[~gone] == np.asarray(truth)[~gone]) >= 0.8


def test_warm_update_accuracy_is_close_to_a_cold_fit() -> None:
    names = NAMES[:6]
    x, y = _household(names, 4, seed=1)
    test, truth = _household(names, 8, seed=4)
    strangers, _ = _voices(["s0", "s1", "s2", "s3"], 6, seed=5)
    full = np.concatenate([test, strangers])
    labels = truth + ["<unknown>"] * len(strangers)
    cold = OpenSetSpeakerIdentifier(**SMALL).fit(x, y, pool=_pool())
    warm = _fit(names[:5]).update(x, y, pool=_pool())
    assert warm.update_mode_ == "warm"
    assert abs(warm.score(full, labels) - cold.score(full, labels)) <= 0.08
    assert warm.score(full, labels) >= 0.85


def test_updated_model_round_trips_through_save_and_load(tmp_path: Path) -> None:
    clf = _fit(NAMES[:4])
    x, y = _household(NAMES[:5], 4, seed=1)
    clf.update(x, y, pool=_pool())
    back = OpenSetSpeakerIdentifier.load(clf.save(tmp_path / "m"))
    test, _ = _household(NAMES[:5], 2, seed=6)
    np.testing.assert_allclose(back.decision_function(test), clf.decision_function(test))
    assert back.classes_ == clf.classes_ and back.n_updates_ == 1
    assert back.update_mode_ == "warm" and back.confidence_threshold_ == clf.confidence_threshold_
    back.update(*_household(NAMES[:6], 4, seed=1), pool=_pool())  # a loaded model updates too
    assert back.update_mode_ == "warm" and back.n_updates_ == 2


def test_update_is_deterministic() -> None:
    x, y = _household(NAMES[:5], 4, seed=1)
    a = _fit(NAMES[:4]).update(x, y, pool=_pool())
    b = _fit(NAMES[:4]).update(x, y, pool=_pool())
    np.testing.assert_array_equal(a.decision_function(x), b.decision_function(x))


def test_cold_fallbacks() -> None:
    x, y = _household(NAMES[:4], 4, seed=1)
    cosine = OpenSetSpeakerIdentifier(method="cosine").fit(x[:8], y[:8])
    assert cosine.update(x, y).update_mode_ == "cold"  # nothing to warm-start
    assert cosine.classes_ == NAMES[:4]
    clf = _fit(NAMES[:2])
    clf.update(*_household(NAMES[2:6], 4, seed=1), pool=_pool())
    assert clf.update_mode_ == "cold"  # no class kept
    clf = _fit(NAMES[:3])
    for _ in range(MAX_WARM_UPDATES):
        clf.update(x, y, pool=_pool())
        assert clf.update_mode_ == "warm"
    clf.update(x, y, pool=_pool())
    assert clf.update_mode_ == "cold" and clf.n_updates_ == 0


def test_failed_update_keeps_the_previous_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    clf = _fit(NAMES[:4])
    test, _ = _household(NAMES[:4], 2, seed=7)
    before = clf.decision_function(test)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(estimator, "train_ensemble", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        clf.update(*_household(NAMES[:5], 4, seed=1), pool=_pool())
    assert clf.classes_ == NAMES[:4] and clf.n_updates_ == 0
    np.testing.assert_array_equal(clf.decision_function(test), before)
    with pytest.raises(InvalidInputError, match="steps"):
        clf.update(*_household(NAMES[:5], 4, seed=1), pool=_pool(), steps=0)
