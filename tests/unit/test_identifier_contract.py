"""Contract of OpenSetSpeakerIdentifier, for every method, on synthetic Gaussian clusters."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from speakerrpl import OpenSetSpeakerIdentifier
from speakerrpl.errors import (
    InvalidInputError,
    ModelMismatchError,
    NotFittedError,
    SpeakerRPLError,
)
from speakerrpl.identifier.settings import IdentifierSettings
from speakerrpl.identifier.tails import table_tail
from speakerrpl.nn.methods import METHODS

pytestmark = pytest.mark.usefixtures("one_torch_thread")


D = 32
SMALL = {
    "n_models": 3, "epochs": 30, "batch_size": 8, "min_steps": 0, "lr": 0.05, "hidden": (32, 16),
    "out_dim": 8, "selection_r": 1, "n_unknown": 6, "n_calibration": 8, "frontend": "toy",
}  # fmt: skip
# LogitNorm at tau 0.04 scales its gradients by 1 / (tau ||f||): the toy recipe's lr of 0.05
# makes one of three members diverge (one class weight grows ~10x and wins every argmax); at
# the library's default lr (0.01) every seed fits.
TOY_LR = {"logitnorm": 0.01}


def small(method: str) -> dict[str, object]:
    """The toy recipe for ``method``."""
    return {**SMALL, "lr": TOY_LR.get(method, SMALL["lr"])}


def _clusters(rng: np.random.Generator, n: int, per: int, prefix: str):
    mu = rng.normal(size=(n, D))
    mu /= np.linalg.norm(mu, axis=1, keepdims=True)
    x = np.repeat(mu, per, axis=0) + 0.15 * rng.normal(size=(n * per, D)) / np.sqrt(D)
    return x.astype(np.float32), np.repeat([f"{prefix}{i}" for i in range(n)], per)


@cache
def data():
    rng = np.random.default_rng(0)
    x, y = _clusters(rng, 4, 6, "spk")
    enroll = np.concatenate([np.flatnonzero(y == c)[:3] for c in np.unique(y)])
    test = np.setdiff1d(np.arange(len(y)), enroll)
    pool = _clusters(rng, 30, 3, "tts")
    strangers = _clusters(rng, 6, 2, "out")[0]
    basis = np.linalg.qr(x.T)[0]  # remove every target direction: far from all of them
    strangers = strangers - (strangers @ basis) @ basis.T
    strangers /= np.linalg.norm(strangers, axis=1, keepdims=True)
    return x[enroll], y[enroll], x[test], y[test], pool, strangers


@cache
def fitted(method: str, seed: int = 0) -> OpenSetSpeakerIdentifier:
    xe, ye, _, _, pool, _ = data()
    clf = OpenSetSpeakerIdentifier(method=method, random_state=seed, **small(method))
    return clf.fit(xe, ye, pool)


@pytest.mark.parametrize("method", METHODS)
def test_fit_returns_self_and_scores_have_contract_shapes(method: str) -> None:
    xe, ye, xt, yt, pool, _ = data()
    clf = OpenSetSpeakerIdentifier(method=method, **small(method))
    assert clf.fit(xe, ye, pool) is clf
    assert clf.classes_ == ["spk0", "spk1", "spk2", "spk3"]
    scores = clf.decision_function(xt)
    assert scores.shape == (len(xt), 4) and np.all(np.isfinite(scores))
    np.testing.assert_allclose(clf.score_samples(xt), scores.max(axis=1))
    assert (np.asarray(clf.classes_)[scores.argmax(axis=1)] == yt).mean() >= 0.75
    m = clf.member_scores(xt)
    assert m.shape[1:] == (len(xt), 4) and set(clf.members_.tolist()) <= set(range(len(m)))


@pytest.mark.parametrize("method", METHODS)
def test_use_before_fit_raises(method: str) -> None:
    clf = OpenSetSpeakerIdentifier(method=method, **SMALL)
    for call in (clf.predict, clf.decision_function, clf.score_samples, clf.member_scores):
        with pytest.raises(NotFittedError):
            call(np.zeros((1, D)))


@pytest.mark.parametrize("method", METHODS)
def test_same_random_state_gives_identical_outputs(method: str) -> None:
    xe, ye, xt, _, pool, _ = data()
    again = OpenSetSpeakerIdentifier(method=method, random_state=0, **small(method))
    again.fit(xe, ye, pool)
    np.testing.assert_array_equal(fitted(method).decision_function(xt), again.decision_function(xt))
    assert fitted(method).threshold_ == again.threshold_
    if method != "cosine":
        other = fitted(method, seed=1).decision_function(xt)
        assert not np.allclose(other, again.decision_function(xt))


@pytest.mark.parametrize("method", METHODS)
def test_far_away_embeddings_are_rejected(method: str) -> None:
    _, _, xt, yt, _, strangers = data()
    clf = fitted(method)
    assert np.all(clf.predict(strangers) == "<unknown>")
    # and targets are still accepted; the 3-member toy ARPL scores its targets barely above
    # the impostors, so at 1 % FAR it accepts only about a quarter of them
    assert np.mean(clf.predict(xt) == yt) >= (0.2 if method == "arpl" else 0.75)
    conf = clf.confidence(np.concatenate([xt, strangers]))
    assert np.all((conf >= 0) & (conf <= 1))
    accepted = clf.predict(np.concatenate([xt, strangers])) != "<unknown>"
    np.testing.assert_array_equal(accepted, conf >= clf.confidence_threshold_)


@pytest.mark.parametrize("method", METHODS)
def test_save_then_load_gives_identical_scores(method: str, tmp_path: Path) -> None:
    _, _, xt, _, _, strangers = data()
    clf = fitted(method)
    clf.save(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["method"] == method and config["frontend"] == "toy" and config["dim"] == D
    loaded = OpenSetSpeakerIdentifier.load(tmp_path / "model", frontend="toy", dim=D)
    np.testing.assert_array_equal(loaded.decision_function(xt), clf.decision_function(xt))
    np.testing.assert_array_equal(loaded.predict(strangers), clf.predict(strangers))
    with pytest.raises(ModelMismatchError):
        OpenSetSpeakerIdentifier.load(tmp_path / "model", frontend="campplus")
    with pytest.raises(ModelMismatchError):
        OpenSetSpeakerIdentifier.load(tmp_path / "model", dim=D + 1)


def test_bad_input_raises_clear_errors() -> None:
    xe, ye, xt, _, pool, _ = data()
    clf = OpenSetSpeakerIdentifier(method="rpl_v1", **SMALL)
    bad_nan = xe.copy()
    bad_nan[0, 0] = np.nan
    cases = [
        (bad_nan, ye, "NaN"),
        (xe[:0], ye[:0], "non-empty"),
        (xe[:4], ye[:4], "utterances per speaker"),
        (xe, np.where(ye == "spk1", "SPK0", ye), "duplicates"),
        (xe, ye[:-1], "labels for"),
    ]
    for x, y, words in cases:
        with pytest.raises(InvalidInputError, match=words):
            clf.fit(x, y)
    with pytest.raises(InvalidInputError, match="voice labels"):
        clf.fit(xe, ye, pool=pool[0])
    with pytest.raises(InvalidInputError, match="method"):
        OpenSetSpeakerIdentifier(method="plda")
    with pytest.raises(InvalidInputError, match="n_modls"):
        OpenSetSpeakerIdentifier(n_modls=3)
    with pytest.raises(InvalidInputError, match="dimension"):
        fitted("cosine").predict(xt[:, :-1])
    assert issubclass(NotFittedError, SpeakerRPLError)
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInputError, match="CUDA"):
            OpenSetSpeakerIdentifier(method="rpl_v1", device="cuda", **SMALL).fit(xe, ye)


def test_rpl_v2_without_pool_warns_and_explicit_threshold_is_used() -> None:
    xe, ye, xt, _, _, _ = data()
    with pytest.warns(UserWarning, match="pool=None"):
        clf = OpenSetSpeakerIdentifier(method="rpl_v2", threshold=1e9, **SMALL).fit(xe, ye)
    assert clf.threshold_ == 1e9 and np.all(clf.predict(xt) == "<unknown>")
    assert clf.training_classes_ == clf.classes_


def test_rpl_v2_extension_selection_and_plot_accessors() -> None:
    clf = fitted("rpl_v2")
    n_unknown = sum(c.startswith("unknown:") for c in clf.training_classes_)
    n_anchor = sum(c.startswith("anchor:") for c in clf.training_classes_)
    assert n_unknown == SMALL["n_unknown"] and n_anchor == 4
    assert 1 <= len(clf.members_) <= 3
    assert clf.select("low").tolist() == clf.members_.tolist()
    assert clf.select("none").tolist() == [0, 1, 2]
    assert set(clf.select("high").tolist()) | set(clf.members_.tolist()) == {0, 1, 2}
    pts = clf.points(member=1)
    assert pts["reciprocal"].shape == pts["centre"].shape == (len(clf.training_classes_), 8)
    assert clf.features(data()[2], member=1).shape == (len(data()[2]), 8)


def test_calibration_max_is_the_stricter_of_pool_and_enrollment() -> None:
    xe, ye, _, _, pool, _ = data()
    thr = {
        c: OpenSetSpeakerIdentifier(
            method="cosine", calibration=c, calibration_margin=0.0, target_far=0.0, **SMALL
        )
        .fit(xe, ye, pool)
        .threshold_
        for c in ("pool", "enrollment", "max")
    }
    assert thr["max"] == max(thr["pool"], thr["enrollment"])
    assert thr["pool"] != thr["enrollment"]
    clf = OpenSetSpeakerIdentifier(method="cosine", calibration="enrollment", target_far=0.0)
    clf.fit(xe, ye)
    scores = clf.decision_function(xe)
    own = scores[np.arange(len(ye)), [clf.classes_.index(v) for v in ye]]
    cross = np.where(np.eye(4, dtype=bool)[[clf.classes_.index(v) for v in ye]], -np.inf, scores)
    assert np.all(cross.max(axis=1) < clf.threshold_)  # FAR 0 on those impostors
    assert np.all(own >= clf.threshold_)


def test_calibration_margin_raises_the_threshold_toward_the_own_scores() -> None:
    xe, ye, _, _, pool, _ = data()
    legacy = {**SMALL, "calibration": "max"}
    base = OpenSetSpeakerIdentifier(method="cosine", calibration_margin=0.0, **legacy)
    base.fit(xe, ye, pool)
    clf = OpenSetSpeakerIdentifier(method="cosine", calibration_margin=0.5, **legacy)
    clf.fit(xe, ye, pool)
    scores = clf.decision_function(xe)
    own_min = scores[np.arange(len(ye)), [clf.classes_.index(v) for v in ye]].min()
    assert own_min > base.threshold_
    assert np.isclose(clf.threshold_, (base.threshold_ + own_min) / 2)
    with pytest.raises(InvalidInputError, match="calibration_margin"):
        OpenSetSpeakerIdentifier(calibration_margin=1.0)


def reference_fusion(clf: OpenSetSpeakerIdentifier, xt: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Fuse the rows ``keep`` of the whole ensemble's scores with numpy (docs/method.md 10)."""
    with torch.no_grad():
        full = clf.ensemble_.logits(torch.as_tensor(clf._prep(xt))).double().numpy()[keep]
    if clf.settings.fusion == "prob":
        e = np.exp(full - full.max(axis=-1, keepdims=True))
        return (e / e.sum(axis=-1, keepdims=True))[..., :4].mean(axis=0)
    target = full[..., :4]
    if clf.settings.fusion == "zscore":
        mu, sd = (s[keep].reshape(-1, 1, 1) for s in clf.zstats_)
        target = (target - mu) / sd
    return target.mean(axis=0)


@pytest.mark.parametrize("fusion", ["logits", "zscore", "prob"])
def test_scoring_runs_only_kept_members_and_equals_fusing_their_scores(fusion: str) -> None:
    """decision_function scores a sliced copy of the kept members; same result as slicing after."""
    xe, ye, xt, _, pool, _ = data()
    clf = OpenSetSpeakerIdentifier(
        **{**SMALL, "method": "rpl_v2", "n_models": 6, "selection_r": 1, "fusion": fusion}
    )
    clf.fit(xe, ye, pool)
    assert 0 < len(clf.members_) < 6
    got = clf.decision_function(xt)
    np.testing.assert_allclose(got, reference_fusion(clf, xt, clf.members_), atol=1e-5)
    clf.members_ = np.arange(6)  # what the evaluation harness does for "fuse all members"
    everyone = clf.decision_function(xt)
    np.testing.assert_allclose(everyone, reference_fusion(clf, xt, np.arange(6)), atol=1e-5)
    assert not np.allclose(got, everyone)


def test_zscore_statistics_are_each_members_target_score_moments() -> None:
    """Without a pool the statistics come from the enrollment rows alone: check with numpy."""
    xe, ye, _, _, _, _ = data()
    with pytest.warns(UserWarning, match="pool=None"):
        params = {**SMALL, "method": "rpl_v2", "fusion": "zscore"}
        clf = OpenSetSpeakerIdentifier(**params).fit(xe, ye)
    scores = clf.member_scores(xe)  # (M, N, K)
    np.testing.assert_allclose(clf.zstats_[0], scores.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(clf.zstats_[1], scores.std(axis=(1, 2)), rtol=1e-4, atol=1e-6)


def test_refitting_one_estimator_equals_a_fresh_fit() -> None:
    """A refit forgets the old model: scores, threshold and kept-members cache all renew."""
    xe, ye, xt, _, pool, _ = data()
    params = {**SMALL, "method": "rpl_v2", "n_models": 4, "selection_r": 1}
    fresh = OpenSetSpeakerIdentifier(random_state=6, **params).fit(xe, ye, pool)
    clf = OpenSetSpeakerIdentifier(random_state=1, **params).fit(xe, ye, pool)
    first = clf.decision_function(xt)
    # both seeds keep the same members, so a cache keyed by member indices alone goes stale
    assert clf.members_.tolist() == fresh.members_.tolist() != list(range(4))
    clf.set_params(random_state=6).fit(xe, ye, pool)
    np.testing.assert_array_equal(clf.decision_function(xt), fresh.decision_function(xt))
    assert clf.threshold_ == fresh.threshold_
    assert not np.allclose(first, fresh.decision_function(xt))
    clf.set_params(method="cosine").fit(xe[:, ::-1], ye)  # another method, other inputs
    assert clf.ensemble_ is None and clf.members_.tolist() == [0]
    twin = OpenSetSpeakerIdentifier(**clf.get_params()).fit(xe[:, ::-1], ye)
    np.testing.assert_array_equal(clf.decision_function(xt), twin.decision_function(xt))


def _flushes_denormals() -> bool:
    return (torch.tensor([1e-300], dtype=torch.float64) * 1e-10).item() == 0.0


@pytest.mark.parametrize("flush", [True, False])
def test_fit_leaves_global_state_as_it_found_it(flush: bool) -> None:
    """The flush-denormal mode and the global torch / numpy generators are untouched by fit."""
    xe, ye, _, _, pool, _ = data()
    torch.set_flush_denormal(flush)
    try:
        torch_rng, numpy_rng = torch.get_rng_state(), np.random.get_state()
        OpenSetSpeakerIdentifier(method="rpl_v2", **SMALL).fit(xe, ye, pool)
        assert _flushes_denormals() == flush
        assert torch.equal(torch.get_rng_state(), torch_rng)
        assert np.random.get_state()[1].tolist() == numpy_rng[1].tolist()
    finally:
        torch.set_flush_denormal(False)


@pytest.mark.parametrize("method", METHODS)
def test_one_enrolled_speaker_works_for_every_method(method: str) -> None:
    """K = 1: class extension gives every trained method enough classes; strangers rejected."""
    xe, ye, xt, yt, pool, strangers = data()
    one = ye == "spk0"
    clf = OpenSetSpeakerIdentifier(method=method, **small(method)).fit(xe[one], ye[one], pool)
    assert clf.classes_ == ["spk0"]
    assert clf.decision_function(xt).shape == (len(xt), 1)
    if method != "cosine":
        assert any(c.startswith("unknown:") for c in clf.training_classes_)
    assert np.mean(clf.predict(strangers) == "<unknown>") >= 0.75
    own = clf.predict(xt[yt == "spk0"])
    assert np.mean(own == "spk0") >= 0.6
    others = clf.predict(xt[yt != "spk0"])
    assert np.all((others == "<unknown>") | (others == "spk0"))


def test_one_enrolled_speaker_without_pool_is_a_clear_error() -> None:
    xe, ye, _, _, _, _ = data()
    one = ye == "spk0"
    with pytest.raises(InvalidInputError, match="pool"):
        OpenSetSpeakerIdentifier(method="rpl_v1", **SMALL).fit(xe[one], ye[one])
    with pytest.raises(InvalidInputError, match="pass pool="):  # no tail for this frontend
        OpenSetSpeakerIdentifier(method="cosine", frontend="resemblyzer").fit(xe[one], ye[one])
    # the default cosine recipe has a measured stranger tail: no pool needed
    clf = OpenSetSpeakerIdentifier(method="cosine").fit(xe[one], ye[one])
    assert clf.decision_.source == "table" and clf.confidence_threshold_ == 0.99
    clf = OpenSetSpeakerIdentifier(method="cosine", threshold=0.5).fit(xe[one], ye[one])
    assert clf.predict(xe[one]).tolist() == ["spk0"] * 3


def test_selection_r_is_checked_before_training_and_scales_with_the_ensemble() -> None:
    """2 r < M is required up front; unset, r is M // 3 (10 of 30, none of 2)."""
    with pytest.raises(InvalidInputError, match="selection_r"):
        OpenSetSpeakerIdentifier(method="rpl_v2", n_models=5, selection_r=3)
    with pytest.raises(InvalidInputError, match="selection_r"):
        OpenSetSpeakerIdentifier(method="rpl_v2", n_models=5).set_params(selection_r=10)
    assert OpenSetSpeakerIdentifier(n_models=5, selection_r=3, selection="none")  # no selection
    assert OpenSetSpeakerIdentifier(method="rpl_v1", n_models=5, selection_r=3)  # no points
    sizes = {
        m: OpenSetSpeakerIdentifier(method="rpl_v2", n_models=m).settings.members_dropped
        for m in (2, 5, 30)
    }
    assert sizes == {2: 0, 5: 1, 30: 10}
    xe, ye, _, _, pool, _ = data()
    clf = OpenSetSpeakerIdentifier(
        **{**SMALL, "method": "rpl_v2", "n_models": 5, "selection_r": None}
    )
    clf.fit(xe, ye, pool)
    assert 3 <= len(clf.members_) <= 4  # one dropped per criterion


def test_each_method_trains_at_its_documented_tau() -> None:
    """logitnorm: 0.04 (Wei et al. 2022); rpl_v2: 1.0 (the published code); tau= overrides."""
    assert fitted("logitnorm").ensemble_.loss.tau == 0.04
    assert fitted("rpl_v2").ensemble_.loss.tau == 1.0
    xe, ye, _, _, pool, _ = data()
    clf = OpenSetSpeakerIdentifier(method="logitnorm", tau=0.5, **small("logitnorm"))
    assert clf.fit(xe, ye, pool).ensemble_.loss.tau == 0.5


def test_centre_score_is_minus_the_dot_with_the_centre_points() -> None:
    """score="centre": each kept member scores -<z, Q_k>; fusion averages the kept members."""
    xe, ye, xt, _, pool, _ = data()
    clf = OpenSetSpeakerIdentifier(method="rpl_v2", score="centre", **SMALL).fit(xe, ye, pool)
    per_member = [
        -clf.features(xt, member=m) @ clf.points(member=m)["centre"][:4].T for m in clf.members_
    ]
    np.testing.assert_allclose(
        clf.decision_function(xt), np.mean(per_member, axis=0), rtol=1e-4, atol=1e-5
    )
    reciprocal = fitted("rpl_v2").decision_function(xt)
    assert not np.allclose(clf.decision_function(xt), reciprocal)


def _cosine_reference(x: np.ndarray, xe: np.ndarray, ye: np.ndarray, mean: np.ndarray, unit: bool):
    """Centroid scores by hand: inputs minus ``mean``, unit-length when ``unit``."""

    def prep(v: np.ndarray) -> np.ndarray:
        v = v - mean
        return v / np.linalg.norm(v, axis=1, keepdims=True) if unit else v

    enrolled = prep(xe) / np.linalg.norm(prep(xe), axis=1, keepdims=True)
    cents = np.stack([enrolled[ye == c].mean(axis=0) for c in dict.fromkeys(ye)])
    return prep(x) @ (cents / np.linalg.norm(cents, axis=1, keepdims=True)).T


@pytest.mark.parametrize("input_norm", ["l2", "center_l2", "none"])
def test_input_norm_prepares_inputs_as_documented(input_norm: str) -> None:
    """l2: unit rows; center_l2: minus the pool mean, then unit rows; none: as given."""
    xe, ye, xt, _, pool, _ = data()
    clf = OpenSetSpeakerIdentifier(method="cosine", input_norm=input_norm, **SMALL)
    clf.fit(xe, ye, pool)
    mean = pool[0].mean(axis=0) if input_norm == "center_l2" else np.zeros(D)
    np.testing.assert_allclose(clf.mean_, mean, rtol=1e-6)
    want = _cosine_reference(3 * xt, xe, ye, mean, unit=input_norm != "none")
    np.testing.assert_allclose(clf.decision_function(3 * xt), want, rtol=1e-4, atol=1e-5)
    trained = OpenSetSpeakerIdentifier(method="rpl_v1", input_norm=input_norm, **SMALL)
    trained.fit(xe, ye, pool)
    scaled = trained.decision_function(3 * xt)
    assert np.allclose(scaled, trained.decision_function(xt), atol=1e-5) == (input_norm == "l2")


def test_without_logitnorm_the_centre_points_never_move() -> None:
    """use_logitnorm=False drops the only loss term on Q: its zero start stays zero."""
    xe, ye, xt, _, pool, _ = data()
    off = OpenSetSpeakerIdentifier(method="rpl_v2", use_logitnorm=False, **SMALL)
    off.fit(xe, ye, pool)
    assert all(not off.points(m)["centre"].any() for m in range(SMALL["n_models"]))
    assert fitted("rpl_v2").points(0)["centre"].any()
    assert np.isfinite(off.decision_function(xt)).all()


def test_confidence_threshold_keeps_its_meaning_across_model_kinds() -> None:
    """A confidence pinned on a one-speaker cosine model means the same on a K = 4 ensemble."""
    xe, ye, xt, _, pool, strangers = data()
    one = ye == "spk0"
    small = OpenSetSpeakerIdentifier(method="cosine", confidence_threshold=0.95)
    small.fit(xe[one], ye[one], pool)
    big = OpenSetSpeakerIdentifier(method="softmax", confidence_threshold=0.95, **SMALL)
    big.fit(xe, ye, pool)
    for clf in (small, big):
        assert clf.confidence_threshold_ == 0.95
        x = np.concatenate([xt, strangers])
        np.testing.assert_array_equal(
            clf.predict(x) != "<unknown>", clf.confidence(x) >= clf.confidence_threshold_
        )
    assert small.threshold_ != big.threshold_  # raw-score thresholds differ, as they must
    with pytest.raises(InvalidInputError, match="confidence scale"):
        OpenSetSpeakerIdentifier(confidence_threshold=3.2)
    with pytest.raises(InvalidInputError, match="not both"):
        OpenSetSpeakerIdentifier(confidence_threshold=0.9, threshold=0.5)
    raw = OpenSetSpeakerIdentifier(method="cosine", threshold=0.5).fit(xe, ye, pool)
    assert raw.threshold_ == 0.5  # a raw threshold is kept and converted
    np.testing.assert_allclose(raw.confidence_threshold_, raw.decision_.confidence(0.5))


def test_default_target_far_means_confidence_one_minus_far_and_is_saved(tmp_path: Path) -> None:
    xe, ye, xt, _, pool, _ = data()
    clf = OpenSetSpeakerIdentifier(method="cosine", target_far=0.05).fit(xe, ye, pool)
    assert clf.confidence_threshold_ == pytest.approx(0.95)
    loaded = OpenSetSpeakerIdentifier.load(clf.save(tmp_path / "m"))
    np.testing.assert_allclose(loaded.confidence(xt), clf.confidence(xt))
    assert loaded.decision_ == clf.decision_


def test_asnorm_cosine_equals_a_numpy_reference_and_survives_save(tmp_path: Path) -> None:
    xe, ye, xt, yt, pool, _ = data()
    clf = OpenSetSpeakerIdentifier(method="cosine", score_norm="asnorm").fit(xe, ye, pool)
    unit = xt / np.linalg.norm(xt, axis=1, keepdims=True)
    raw, coh = unit @ clf.centroids_.T, unit @ clf.cohort_.T
    top = -np.sort(-coh, axis=1)[:, :20]
    ctop = -np.sort(-(clf.centroids_ @ clf.cohort_.T), axis=1)[:, :20]
    want = 0.5 * (
        (raw - ctop.mean(1)) / ctop.std(1)
        + (raw - top.mean(1, keepdims=True)) / top.std(1, keepdims=True)
    )
    np.testing.assert_allclose(clf.decision_function(xt), want, rtol=1e-4, atol=1e-4)
    assert clf.decision_.source == "fitted"  # no measured tail for AS-norm scores
    other = OpenSetSpeakerIdentifier(method="rpl_v2", selection_r=10, frontend="campplus")
    assert table_tail(other.settings)[1] == "table"  # selection_r=None resolves to 10 of 30
    assert table_tail(IdentifierSettings(method="rpl_v2", n_models=12))[1] == "table-approx"
    assert np.mean(clf.predict(xt) == yt) >= 0.75
    loaded = OpenSetSpeakerIdentifier.load(clf.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.decision_function(xt), clf.decision_function(xt))
    with pytest.raises(InvalidInputError, match="cosine"):
        OpenSetSpeakerIdentifier(method="softmax", score_norm="asnorm")


def test_asnorm_normalises_against_a_given_cohort_instead_of_the_pool(tmp_path: Path) -> None:
    xe, ye, xt, _, pool, strangers = data()
    rng = np.random.default_rng(5)
    cohort = _clusters(rng, 8, 3, "cohort")
    clf = OpenSetSpeakerIdentifier(method="cosine", score_norm="asnorm")
    clf.fit(xe, ye, pool, cohort=cohort)
    unit = cohort[0] / np.linalg.norm(cohort[0], axis=1, keepdims=True)
    names = list(dict.fromkeys(cohort[1].tolist()))
    want = np.stack([unit[cohort[1] == n].mean(0) for n in names])
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(clf.cohort_, want, atol=1e-6)  # the cohort's voices, not the pool
    target_side = clf.centroids_ @ want.T  # both sides' statistics: all 8 voices (top 20)
    np.testing.assert_allclose(clf.cohort_stats_[0], target_side.mean(1), atol=1e-5)
    np.testing.assert_allclose(clf.cohort_stats_[1], target_side.std(1), atol=1e-5)
    from_pool = OpenSetSpeakerIdentifier(method="cosine", score_norm="asnorm").fit(xe, ye, pool)
    assert clf.cohort_.shape[0] == 8 != from_pool.cohort_.shape[0]
    assert not np.allclose(clf.decision_function(xt), from_pool.decision_function(xt))
    no_pool = OpenSetSpeakerIdentifier(method="cosine", score_norm="asnorm")
    np.testing.assert_allclose(  # the cohort needs no pool; the threshold does, not the scores
        no_pool.fit(xe, ye, cohort=cohort).decision_function(xt), clf.decision_function(xt)
    )
    loaded = OpenSetSpeakerIdentifier.load(clf.save(tmp_path / "m"))
    np.testing.assert_array_equal(
        loaded.decision_function(strangers), clf.decision_function(strangers)
    )
    with pytest.raises(InvalidInputError, match="score_norm='asnorm' only"):
        OpenSetSpeakerIdentifier(method="cosine").fit(xe, ye, pool, cohort=cohort)
    with pytest.raises(InvalidInputError, match="at least 2 voices"):
        clf.fit(xe, ye, pool, cohort=(cohort[0][:3], ["one"] * 3))
    with pytest.raises(InvalidInputError, match="3 embeddings but 2 labels"):
        clf.fit(xe, ye, pool, cohort=(cohort[0][:3], ["a", "b"]))
    with pytest.raises(InvalidInputError, match="cohort"):
        clf.fit(xe, ye, pool, cohort=(cohort[0][:, :4], cohort[1]))
    with pytest.raises(InvalidInputError, match="needs a cohort"):
        OpenSetSpeakerIdentifier(method="cosine", score_norm="asnorm").fit(xe, ye)


def test_extension_cohort_norm_equals_a_numpy_reference_and_survives_save(tmp_path: Path) -> None:
    xe, ye, xt, _, pool, _ = data()
    params = {**small("rpl_v2"), "method": "rpl_v2", "unknown_bound": 0.5}
    clf = OpenSetSpeakerIdentifier(score_norm="extension", **params).fit(xe, ye, pool)
    raw = OpenSetSpeakerIdentifier(**params).fit(xe, ye, pool)
    # the option changes scoring only: the same seed trains the same ensemble
    np.testing.assert_array_equal(clf.member_scores(xt), raw.member_scores(xt))
    names = clf.training_classes_
    unknown = [i for i, c in enumerate(names) if c.startswith("unknown:")]
    assert len(unknown) >= 2 and unknown == list(range(4, 4 + len(unknown)))
    logits = np.mean(
        [-clf.features(xt, m) @ clf.points(m)["reciprocal"].T for m in clf.members_], axis=0
    )
    top = logits[:, unknown]  # the toy's 6 unknown classes: top 40 takes all of them
    want = (logits[:, :4] - top.mean(1, keepdims=True)) / top.std(1, keepdims=True)
    np.testing.assert_allclose(clf.decision_function(xt), want, rtol=1e-4, atol=1e-4)
    assert clf.decision_.source == "fitted"  # no measured tail for normalised scores
    # a positive per-row affine map: it changes whom the threshold rejects, never whom it names
    best = clf.decision_function(xt).argmax(axis=1)
    np.testing.assert_array_equal(best, raw.decision_function(xt).argmax(axis=1))
    named = clf.predict(xt)
    accepted = clf.decision_function(xt).max(axis=1) >= clf.threshold_
    assert np.all(named[~accepted] == "<unknown>")
    assert np.all(named[accepted] == np.asarray(clf.classes_)[best[accepted]])
    loaded = OpenSetSpeakerIdentifier.load(clf.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.decision_function(xt), clf.decision_function(xt))


def test_extension_cohort_norm_is_refused_where_there_is_no_extension_cohort() -> None:
    xe, ye = data()[:2]
    with pytest.raises(InvalidInputError, match="only \\['rpl_v2'\\]"):
        OpenSetSpeakerIdentifier(method="softmax", score_norm="extension")
    with pytest.raises(InvalidInputError, match="n_unknown >= 2"):
        OpenSetSpeakerIdentifier(method="rpl_v2", score_norm="extension", n_unknown=1)
    with pytest.raises(InvalidInputError, match="cosine"):
        OpenSetSpeakerIdentifier(method="rpl_v2", score_norm="asnorm")
    clf = OpenSetSpeakerIdentifier(method="rpl_v2", score_norm="extension", **small("rpl_v2"))
    refused = pytest.raises(InvalidInputError, match="needs >= 2 synthetic unknown classes, got 0")
    with refused, pytest.warns(UserWarning, match="pool=None"):
        clf.fit(xe, ye)
    with pytest.raises(InvalidInputError, match="unknown_rule must be one of"):
        OpenSetSpeakerIdentifier(method="rpl_v2", unknown_rule="nearest")
