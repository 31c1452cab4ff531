"""scikit-learn compatibility: get_params / set_params, clone, grid search (defect 10)."""

from __future__ import annotations

import numpy as np
import pytest
from test_identifier_contract import SMALL, data

from speakerrpl import OpenSetSpeakerIdentifier
from speakerrpl.errors import InvalidInputError
from speakerrpl.identifier.settings import IdentifierSettings

sklearn_base = pytest.importorskip("sklearn.base")
model_selection = pytest.importorskip("sklearn.model_selection")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_get_params_names_every_setting_and_rebuilds_the_estimator() -> None:
    clf = OpenSetSpeakerIdentifier(method="rpl_v1", n_models=4, tau=0.5)
    params = clf.get_params()
    assert params == IdentifierSettings(method="rpl_v1", n_models=4, tau=0.5).to_dict() | {
        "hidden": clf.settings.hidden
    }
    assert OpenSetSpeakerIdentifier(**params).settings == clf.settings


def test_set_params_validates_and_returns_self() -> None:
    clf = OpenSetSpeakerIdentifier(method="cosine")
    assert clf.set_params(input_norm="none", target_far=0.05) is clf
    assert clf.settings.input_norm == "none" and clf.settings.target_far == 0.05
    with pytest.raises(InvalidInputError, match="n_modls"):
        clf.set_params(n_modls=3)
    with pytest.raises(InvalidInputError, match="input_norm"):
        clf.set_params(input_norm="l3")


def test_clone_of_a_fitted_estimator_is_unfitted_and_refits_identically() -> None:
    xe, ye, xt, _, pool, _ = data()
    clf = OpenSetSpeakerIdentifier(method="rpl_v2", **SMALL).fit(xe, ye, pool)
    assert clf.n_features_in_ == xe.shape[1]
    twin = sklearn_base.clone(clf)
    assert twin.settings == clf.settings and not hasattr(twin, "threshold_")
    twin.fit(xe, ye, pool)
    np.testing.assert_array_equal(twin.decision_function(xt), clf.decision_function(xt))
    assert twin.threshold_ == clf.threshold_


def test_grid_search_picks_a_setting_by_open_set_accuracy() -> None:
    xe, ye, xt, yt, _, strangers = data()
    x = np.concatenate([xe, xt, strangers])
    y = np.concatenate([ye, yt, ["<unknown>"] * len(strangers)])
    enroll = np.arange(len(xe))
    split = (enroll, np.arange(len(xe), len(x)))  # enroll on targets, test on targets + strangers
    # an explicit threshold of 2 rejects every cosine score (<= 1): accuracy = share of strangers
    grid = {"threshold": [None, 2.0], "input_norm": ["l2", "none"]}
    search = model_selection.GridSearchCV(
        OpenSetSpeakerIdentifier(method="cosine"), grid, cv=[split], refit=False
    )
    search.fit(x, y)
    assert search.best_params_["threshold"] is None
    results = search.cv_results_
    scores = dict(zip(map(str, results["params"]), results["mean_test_score"], strict=True))
    share = len(strangers) / (len(xt) + len(strangers))
    assert scores[str({"input_norm": "l2", "threshold": 2.0})] == pytest.approx(share)
    assert scores[str({"input_norm": "l2", "threshold": None})] > share
