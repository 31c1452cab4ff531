"""The default's cosine blend: what it computes, when it is on, and that it survives a save."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from speakerrpl import OpenSetSpeakerIdentifier
from speakerrpl.errors import InvalidInputError
from speakerrpl.identifier.blend import blend_weight, cosine_blend_for
from speakerrpl.identifier.calibration import StrangerTail
from speakerrpl.identifier.settings import IdentifierSettings
from speakerrpl.identifier.tails import BLEND_WEIGHTS, TAILS, table_tail

pytestmark = pytest.mark.usefixtures("one_torch_thread")

D = 32
RECIPE = {"n_models": 3, "epochs": 20, "batch_size": 8, "min_steps": 0, "hidden": (32, 16),
          "out_dim": 8, "n_calibration": 8}  # fmt: skip


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(3)
    mu = rng.normal(size=(4, D))
    x = np.repeat(mu, 5, axis=0) + 0.3 * rng.normal(size=(20, D))
    y = np.repeat([f"s{i}" for i in range(4)], 5)
    pool = rng.normal(size=(60, D)), np.repeat([f"p{i}" for i in range(20)], 3)
    return x[::2].astype(np.float32), y[::2], x[1::2].astype(np.float32), pool


def test_default_blends_softmax_with_cosine_and_the_adapters_alone_are_one_setting_away() -> None:
    assert IdentifierSettings().blends and IdentifierSettings(method="softmax").blends
    assert not IdentifierSettings(method="cosine").blends
    assert not IdentifierSettings(method="arpl").blends  # no weight measured
    assert not IdentifierSettings.preset("rpl_v2_published").blends
    assert not IdentifierSettings(frontend="ge2e").blends  # tails measured with CAM++ only
    with pytest.raises(InvalidInputError, match="cosine_blend=True"):
        IdentifierSettings(method="arpl", cosine_blend=True)


def test_blended_scores_equal_the_standardised_sum_computed_independently() -> None:
    xe, ye, xt, pool = _data()
    blended = OpenSetSpeakerIdentifier(**RECIPE).fit(xe, ye, pool=pool)
    alone = OpenSetSpeakerIdentifier(**RECIPE, cosine_blend=False).fit(xe, ye, pool=pool)
    assert not hasattr(alone, "blend_")
    # same training (the blend only changes scoring): an independent reference of the blend
    xn = xt / np.linalg.norm(xt, axis=1, keepdims=True)
    en = xe / np.linalg.norm(xe, axis=1, keepdims=True)
    cents = np.stack([en[ye == c].mean(0) for c in blended.classes_])
    cos = xn @ (cents / np.linalg.norm(cents, axis=1, keepdims=True)).T
    k, w = 4, BLEND_WEIGHTS["softmax"][4]
    (mc, sc), (ma, sa) = TAILS["cosine"][k], TAILS["softmax"][k]
    want = w * (cos - mc) / sc + (1 - w) * (alone.decision_function(xt) - ma) / sa
    np.testing.assert_allclose(blended.decision_function(xt), want, rtol=1e-4, atol=1e-4)
    # the decision uses the blend's own measured tail (this small recipe: as the nearest one;
    # the pool guard may only raise its mean)
    assert blended.decision_.source == "table-approx"
    tail = StrangerTail.from_table(TAILS["softmax+cosine"])
    assert blended.decision_.tail.params(k)[1] == pytest.approx(tail.params(k)[1])
    assert blended.threshold_ >= tail.score_threshold(0.01, k) - 1e-9


def test_weight_follows_the_table_in_log_k_and_holds_beyond_it() -> None:
    table = BLEND_WEIGHTS["softmax"]
    for k, w in table.items():
        assert blend_weight("softmax", k) == pytest.approx(w)
    mid = float(np.interp(np.log(3), np.log([2, 4]), [table[2], table[4]]))
    assert blend_weight("softmax", 3) == pytest.approx(mid)
    assert blend_weight("softmax", 500) == pytest.approx(table[max(table)])
    assert cosine_blend_for("softmax", 20).weight == pytest.approx(table[20])


def test_blend_round_trips_and_format_2_models_load_without_it(tmp_path: Path) -> None:
    xe, ye, xt, pool = _data()
    clf = OpenSetSpeakerIdentifier(**RECIPE).fit(xe, ye, pool=pool)
    again = OpenSetSpeakerIdentifier.load(clf.save(tmp_path / "m"))
    np.testing.assert_allclose(again.decision_function(xt), clf.decision_function(xt))
    assert again.predict(xt).tolist() == clf.predict(xt).tolist()
    # a format-2 model (saved before the blend) keeps scoring with the adapters alone
    old = OpenSetSpeakerIdentifier(**RECIPE, cosine_blend=False).fit(xe, ye, pool=pool)
    path = old.save(tmp_path / "old")
    config = json.loads((path / "config.json").read_text())
    config["format"] = 2
    del config["blend"]
    del config["settings"]["cosine_blend"]
    (path / "config.json").write_text(json.dumps(config))
    loaded = OpenSetSpeakerIdentifier.load(path)
    assert loaded.settings.cosine_blend is False and not hasattr(loaded, "blend_")
    np.testing.assert_allclose(loaded.decision_function(xt), old.decision_function(xt))


def test_table_tail_picks_the_blend_table_only_when_blending() -> None:
    assert table_tail(IdentifierSettings())[1] == "table"
    tail, source = table_tail(IdentifierSettings(cosine_blend=False))
    assert source == "table" and tail is not None
    assert tail.params(4) == pytest.approx(TAILS["softmax"][4])
    assert table_tail(IdentifierSettings())[0].params(4) == pytest.approx(
        TAILS["softmax+cosine"][4]
    )


def test_a_warm_household_change_blends_for_the_new_household() -> None:
    xe, ye, _, pool = _data()
    three = ye != "s3"
    clf = OpenSetSpeakerIdentifier(**RECIPE).fit(xe[three], ye[three], pool=pool)
    assert clf.blend_.weight == pytest.approx(blend_weight("softmax", 3))
    clf.update(xe, ye, pool=pool)
    assert clf.update_mode_ == "warm"
    assert clf.blend_ == cosine_blend_for("softmax", 4)
    en = xe / np.linalg.norm(xe, axis=1, keepdims=True)
    want = np.stack([en[ye == c].mean(0) for c in clf.classes_])
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(clf.centroids_, want, atol=1e-5)
