"""The quality-aware decision (``calibration="quality"``): a condition posterior from the
embedding weighs per-condition stranger tails."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from speakerrpl.data.condition_ids import CONDITIONS
from speakerrpl.decisions import identify_embeddings
from speakerrpl.errors import InvalidInputError, ModelLoadError
from speakerrpl.identifier import OpenSetSpeakerIdentifier
from speakerrpl.identifier.calibration import StrangerTail
from speakerrpl.identifier.conditions import (
    ConditionModel,
    mismatch_posterior,
    shipped_condition_model,
)
from speakerrpl.identifier.decision import Decision, calibrate_decision
from speakerrpl.identifier.settings import IdentifierSettings
from speakerrpl.identifier.tails import COMPENSATED, CONDITION_TAILS, COPIES

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DIM = 192


def _two_condition_decision(far: float = 0.01) -> Decision:
    clean = StrangerTail.from_table({4: (0.0, 1.0)})
    phone = StrangerTail.from_table({4: (-1.0, 0.8)})
    thr = clean.score_threshold(far, 4)
    return Decision(clean, 4, thr, 1 - far, "table", (("clean", clean), ("phone", phone)))


def test_the_shipped_condition_model_covers_the_corpus_conditions() -> None:
    model = shipped_condition_model("campplus")
    assert model.names == ("clean", *CONDITIONS)
    assert model.weights.shape == (len(model.names), DIM)
    post = model.posterior(np.random.default_rng(0).normal(size=(5, DIM)))
    assert post.shape == (5, len(model.names))
    np.testing.assert_allclose(post.sum(axis=1), 1.0, atol=1e-12)
    assert (post >= 0).all()
    with pytest.raises(InvalidInputError, match="192"):
        model.posterior(np.zeros((2, 10)))
    with pytest.raises(InvalidInputError, match="no condition model"):
        shipped_condition_model("ge2e")
    # every measured per-condition table names the same conditions, in the model's order
    for by_k in CONDITION_TAILS.values():
        assert all(tuple(row) == model.names for row in by_k.values())


def test_a_damaged_condition_model_is_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "c.npz"
    np.savez(bad, names=np.array(["clean", "phone"]), weights=np.zeros((3, 4)), bias=np.zeros(2))
    with pytest.raises(ModelLoadError, match="shapes"):
        ConditionModel.load(bad)
    with pytest.raises(ModelLoadError, match="cannot read"):
        ConditionModel.load(tmp_path / "missing.npz")


def test_the_confidence_is_the_posterior_weighted_mixture_of_condition_tails() -> None:
    d = _two_condition_decision()
    s = np.array([1.5, 2.0, 2.5, 3.0])
    clean_conf = d.condition_tails[0][1].confidence(s, 4)
    phone_conf = d.condition_tails[1][1].confidence(s, 4)
    np.testing.assert_allclose(d.confidence(s, np.tile([1.0, 0.0], (4, 1))), clean_conf)
    np.testing.assert_allclose(d.confidence(s, np.tile([0.0, 1.0], (4, 1))), phone_conf)
    mixed = d.confidence(s, np.tile([0.25, 0.75], (4, 1)))
    np.testing.assert_allclose(mixed, 0.25 * clean_conf + 0.75 * phone_conf)
    # without a posterior: the single (clean, strictest) tail
    np.testing.assert_allclose(d.confidence(s), clean_conf)
    # a phone-like clip is accepted at a score the clean channel refuses
    s_mid = np.array([d.score_threshold - 0.3])
    assert not d.accepts(s_mid)[0]
    assert not d.accepts(s_mid, np.array([[1.0, 0.0]]))[0]
    assert d.accepts(s_mid, np.array([[0.0, 1.0]]))[0]
    with pytest.raises(InvalidInputError, match="posterior"):
        d.confidence(s, np.ones((4, 3)))
    assert Decision.from_dict(d.to_dict()) == d


def test_simulated_strangers_are_accepted_at_the_requested_rate_in_each_condition() -> None:
    """Strangers drawn from each condition's tail: with the right posterior the mixture
    accepts the requested share in every condition; the single (clean) tail accepts far fewer
    on the lower-scoring channel, where it also refuses genuine speakers; a posterior that is
    10 % unsure lands in between there."""
    d = _two_condition_decision(far=0.05)
    rng = np.random.default_rng(1)
    n = 100_000
    for j, (_name, tail) in enumerate(d.condition_tails):
        m, sd = tail.params(4)
        best = rng.normal(m, sd, size=(n, 4)).max(axis=1)
        sure = np.zeros((n, 2))
        sure[:, j] = 1.0
        assert float(np.mean(d.accepts(best, sure))) == pytest.approx(0.05, abs=0.005)
        single = float(np.mean(d.accepts(best)))
        if j == 0:
            assert single == pytest.approx(0.05, abs=0.005)
        else:
            assert single < 0.005
            unsure = np.tile([0.1, 0.9], (n, 1))
            assert single < float(np.mean(d.accepts(best, unsure))) < 0.05


@pytest.mark.parametrize(
    ("params", "table_set", "k", "expected"),
    [
        ({}, COMPENSATED, 4, True),
        ({}, COPIES, 20, True),
        ({}, COMPENSATED, 21, False),  # beyond the measured households
        ({"method": "cosine"}, COMPENSATED, 4, False),  # no per-condition table
        ({"n_models": 2}, COMPENSATED, 4, False),  # another recipe: table-approx
        ({}, "raw", 4, False),
    ],
)
def test_quality_calibration_applies_where_condition_tails_were_measured(
    params: dict, table_set: str, k: int, expected: bool, caplog: pytest.LogCaptureFixture
) -> None:
    settings = IdentifierSettings(calibration="quality", **params)
    n = 3 * k
    cross = np.random.default_rng(0).normal(0.0, 1.0, (n, k))
    cross[np.arange(n), np.arange(n) // 3] = -np.inf
    with caplog.at_level(logging.INFO, logger="speakerrpl.identifier.decision"):
        d = calibrate_decision(settings, np.full(n, 5.0), cross, None, table_set)
    assert d.quality_aware == expected
    assert any("per-condition" in r.getMessage() for r in caplog.records) == (not expected)
    assert (
        calibrate_decision(IdentifierSettings(**params), np.full(n, 5.0), cross, None, table_set)
        == d
    )  # the default
    plain = calibrate_decision(
        IdentifierSettings(calibration="tail", **params), np.full(n, 5.0), cross, None, table_set
    )
    assert not plain.quality_aware
    assert d.score_threshold == pytest.approx(plain.score_threshold)  # same clean-channel tail


def test_the_pool_guard_raises_every_condition_tail_alike() -> None:
    k, n = 4, 12
    cross = np.random.default_rng(0).normal(0.0, 1.0, (n, k))
    cross[np.arange(n), np.arange(n) // 3] = -np.inf
    pool = np.full((40, k), -5.0)
    pool[:4] = 9.0  # a tenth of the held-out clips far above the table's threshold
    settings = IdentifierSettings(calibration="quality", target_far=0.05)
    free = calibrate_decision(settings, np.full(n, 5.0), cross, None, COMPENSATED)
    guarded = calibrate_decision(settings, np.full(n, 5.0), cross, pool, COMPENSATED)
    gap = guarded.tail.params(k)[0] - free.tail.params(k)[0]
    assert gap > 0
    for (_, a), (_, b) in zip(free.condition_tails, guarded.condition_tails, strict=True):
        assert b.params(k)[0] - a.params(k)[0] == pytest.approx(gap)


def test_the_mismatch_posterior_keeps_only_what_the_enrollment_did_not_show() -> None:
    names = ("clean", "far", "phone", "noise")
    rng = np.random.default_rng(4)
    test = rng.dirichlet(np.ones(4), size=50)
    enrolled = rng.dirichlet(np.ones(4), size=6)  # six enrollment clips
    q = mismatch_posterior(test, enrolled, names)
    most, clean_share = enrolled.max(axis=0), enrolled[:, 0].mean()
    for row, t in zip(q, test, strict=True):  # element by element, as the docstring says
        extra = [clean_share * max(t[c] - most[c], 0.0) for c in (1, 2, 3)]
        np.testing.assert_allclose(row, [1.0 - sum(extra), *extra])
    assert (q >= 0).all()
    clean_enrollment = np.array([[1.0, 0.0, 0.0, 0.0]])  # nothing to subtract or scale
    np.testing.assert_allclose(mismatch_posterior(test, clean_enrollment, names), test)
    same = mismatch_posterior(test, test, names)  # no clip beyond the enrollment
    np.testing.assert_allclose(same, np.tile([1.0, 0, 0, 0], (50, 1)))
    unclean = mismatch_posterior(test, np.array([[0.0, 0.0, 0.0, 1.0]]), names)
    np.testing.assert_allclose(unclean[:, 0], 1.0)  # an enrollment that never sounds clean
    with pytest.raises(InvalidInputError, match="enrollment condition posteriors"):
        mismatch_posterior(test, enrolled[:, :3], names)


def test_a_household_enrolled_on_the_line_it_is_heard_on_is_judged_as_clean() -> None:
    """The per-condition tails are for a channel that differs from the enrollment's: a
    household that enrolled on a telephone line and is heard on it gets the clean tail."""
    rng = np.random.default_rng(6)
    x, y, pool = household(rng, 3)
    tests = on_a_phone_line(x, rng)
    clean_enrolled = OpenSetSpeakerIdentifier(random_state=0).fit(in_a_quiet_room(x), y, pool=pool)
    phone_enrolled = OpenSetSpeakerIdentifier(random_state=0).fit(on_a_phone_line(x, rng), y,
                                                                  pool=pool)  # fmt: skip
    phone = shipped_condition_model("campplus").names.index("phone")
    assert clean_enrolled.condition_posterior(tests)[:, phone].mean() > 0.2
    assert phone_enrolled.condition_posterior(tests)[:, phone].mean() < 0.05
    best = phone_enrolled.decision_function(tests).max(axis=1)
    as_clean = np.zeros((len(best), len(CONDITIONS) + 1))
    as_clean[:, 0] = 1.0  # the clean condition's tail alone
    clean_tail = phone_enrolled.decision_.confidence(best, as_clean)
    np.testing.assert_allclose(phone_enrolled.confidence(tests), clean_tail, atol=0.01)


def test_an_update_keeps_the_new_enrollments_condition() -> None:
    rng = np.random.default_rng(8)
    x, y, pool = household(rng, 4)
    clf = OpenSetSpeakerIdentifier(random_state=0).fit(x[:9], y[:9], pool=pool)
    model = shipped_condition_model("campplus")
    np.testing.assert_allclose(clf.enrollment_condition_, model.posterior(x[:9]), atol=1e-6)
    moved = np.concatenate([x[:9], on_a_phone_line(x[9:], rng)])  # the newcomer on a phone
    clf.update(moved, y, pool=pool)
    assert clf.update_mode_ == "warm"
    np.testing.assert_allclose(clf.enrollment_condition_, model.posterior(moved), atol=1e-6)


def household(rng: np.random.Generator, n_people: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """``n_people`` voices with 3 clips each (``p0``, ``p1``, ...) and a pool of 30 voices x 3."""
    centres = rng.normal(size=(n_people, DIM))
    x = np.repeat(centres, 3, axis=0) + 0.4 * rng.normal(size=(3 * n_people, DIM))
    y = np.repeat([f"p{i}" for i in range(n_people)], 3)
    pool_c = rng.normal(size=(30, DIM))
    pool = (
        np.repeat(pool_c, 3, axis=0) + 0.4 * rng.normal(size=(90, DIM)),
        np.repeat([f"v{i}" for i in range(30)], 3),
    )
    return x, y, pool


def _towards(x: np.ndarray, condition: str, amount: float) -> np.ndarray:
    """Unit-length ``x`` moved towards what the shipped condition model takes for ``condition``."""
    model = shipped_condition_model("campplus")
    towards = model.weights[model.names.index(condition)] - model.weights.mean(axis=0)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    return unit + amount * towards / np.linalg.norm(towards)


def in_a_quiet_room(x: np.ndarray) -> np.ndarray:
    """Clips of the speakers of ``x`` that the condition model reads as clean."""
    return _towards(x, "clean", 0.45)


def on_a_phone_line(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """New clips of the speakers of ``x``, as a telephone line would give them."""
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    return _towards(unit + 0.11 * rng.normal(size=x.shape), "phone", 0.45)


def test_an_identifier_fitted_with_quality_calibration_decides_by_it(tmp_path) -> None:
    rng = np.random.default_rng(3)
    x, y, pool = household(rng, 4)
    x = in_a_quiet_room(x)
    clf = OpenSetSpeakerIdentifier(calibration="quality", random_state=0).fit(x, y, pool=pool)
    assert clf.decision_.quality_aware and clf.table_set == COMPENSATED
    model = shipped_condition_model("campplus")
    phone = model.names.index("phone")
    tests = np.concatenate([on_a_phone_line(x, rng), rng.normal(size=(12, DIM))])
    post = clf.condition_posterior(tests)
    # relative to the enrollment (whatever channel it sounds like): the enrollment's own clips
    # read as clean, the telephone clips as telephone
    assert post[:12, phone].mean() > 0.3 > post[12:, phone].mean()
    np.testing.assert_allclose(clf.condition_posterior(x)[:, model.names.index("clean")], 1.0)
    best = clf.decision_function(tests).max(axis=1)
    conf = clf.confidence(tests)
    np.testing.assert_allclose(conf, clf.decision_.confidence(best, post))
    accepted = clf.predict(tests) != clf.settings.unknown_label
    np.testing.assert_array_equal(accepted, conf >= clf.confidence_threshold_)
    # the telephone clips: some are accepted below the clean-channel threshold
    assert (accepted & (best < clf.threshold_)).any()
    rows = identify_embeddings(clf, tests)
    assert [r["speaker"] for r in rows] == clf.predict(tests).tolist()
    loaded = OpenSetSpeakerIdentifier.load(clf.save(tmp_path / "m"))
    assert loaded.decision_ == clf.decision_
    np.testing.assert_allclose(loaded.enrollment_condition_, clf.enrollment_condition_)
    np.testing.assert_array_equal(loaded.predict(tests), clf.predict(tests))
    # the single tail has no posterior to read, and decides by the score threshold
    single = OpenSetSpeakerIdentifier(calibration="tail", random_state=0).fit(x, y, pool=pool)
    assert single.condition_posterior(tests) is None
    s = single.decision_function(tests)
    np.testing.assert_array_equal(
        single.predict(tests) != single.settings.unknown_label, s.max(axis=1) >= single.threshold_
    )


def test_the_service_model_decides_as_the_estimator_and_a_pinned_threshold_converts() -> None:
    """A registry model of a quality-aware fit: ``identify`` names exactly the rows
    ``predict`` names; a user-pinned score threshold is read on the confidence scale."""
    from speakerrpl.service.models import (
        ModelRecord,
        fit_model,
        identifier_from_files,
        load_model,
    )
    from speakerrpl.service.records import Snapshot

    rng = np.random.default_rng(5)
    x, y, pool = household(rng, 3)  # three people, three clips each
    people = {name: in_a_quiet_room(x[y == name]) for name in dict.fromkeys(y)}
    snap = Snapshot(1, None, people)
    fitted = fit_model(snap, params={"random_state": 0}, pool=pool)
    record = ModelRecord(1, 1, fitted.kind, fitted.classes, fitted.info, fitted.files)
    model = load_model(record)
    ident = identifier_from_files(OpenSetSpeakerIdentifier, fitted.files)
    assert ident.decision_.quality_aware
    tests = np.concatenate(
        [on_a_phone_line(np.concatenate(list(people.values())), rng), rng.normal(size=(9, DIM))]
    ).astype(np.float32)
    rows = model.identify(tests)
    conf = np.array([r["confidence"] for r in rows])
    accepted = np.array([r["speaker"] != model.unknown_label for r in rows])
    np.testing.assert_array_equal(accepted, conf >= model.confidence_threshold)
    assert [r["speaker"] for r in rows] == ident.predict(tests).tolist()
    assert any(a and r["score"] < model.threshold for a, r in zip(accepted, rows, strict=True))
    np.testing.assert_allclose(conf, ident.confidence(tests), atol=1e-9)
    # the same model with a pinned score threshold: converted once, applied per clip
    pinned = load_model(
        ModelRecord(
            1, 1, fitted.kind, fitted.classes, {**fitted.info, "threshold": 1.0}, fitted.files
        )
    )
    assert pinned.confidence_threshold == pytest.approx(
        float(ident.decision_.confidence(np.array([1.0]))[0])  # the single tail at 1.0
    )
    rows = pinned.identify(tests)
    accepted = np.array([r["speaker"] != pinned.unknown_label for r in rows])
    np.testing.assert_array_equal(
        accepted, np.array([r["confidence"] for r in rows]) >= pinned.confidence_threshold
    )


def test_a_request_without_its_own_threshold_keeps_the_models_per_clip_decision() -> None:
    from speakerrpl.service.voiceprints import apply_request_threshold

    # accepted by a quality-aware model below the clean-channel score threshold
    res = {"speaker": "bob", "best_match": "bob", "score": 1.2, "threshold": 1.5,
           "confidence": 0.995, "confidence_threshold": 0.99}  # fmt: skip
    assert apply_request_threshold([res], None, None)[0]["speaker"] == "bob"
    assert apply_request_threshold([res], None, 0.999)[0]["speaker"] == "<unknown>"
    assert apply_request_threshold([res], 1.5, None)[0]["speaker"] == "<unknown>"  # raw, pinned
    refused = {**res, "speaker": "<unknown>", "confidence": 0.5}
    assert apply_request_threshold([refused], None, None)[0]["speaker"] == "<unknown>"
