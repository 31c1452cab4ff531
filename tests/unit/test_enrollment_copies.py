"""Multi-condition enrollment: channel copies of the enrollment audio, and what a fit does
with their embeddings (``fit(..., copies=)``)."""

from __future__ import annotations

import logging
import shutil
import sqlite3

import numpy as np
import pytest

from speakerrpl.errors import InvalidInputError
from speakerrpl.identifier import OpenSetSpeakerIdentifier
from speakerrpl.identifier.blend import cosine_blend_for
from speakerrpl.identifier.tails import COPIES_TAILS, COPIES_UP_TO_K
from speakerrpl.service.registry import Enrollment, SpeakerRegistry
from speakerrpl.synth.enrollment_copies import (
    CHANNELS,
    babble_talkers,
    channel_copies,
    enrollment_copies,
)
from speakerrpl.vectors import centroids

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DIM = 192  # the shipped channel model's (CAM++) size: these fits are compensated
SMALL = {"n_models": 2, "hidden": (32,), "out_dim": 16, "min_steps": 20, "n_calibration": 4}


def _speech_like(seed: int, seconds: float = 1.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 120 + 80 * rng.random()
    wave = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 8))
    return (
        0.2 * wave * (1 + np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(t.size)
    ).astype(np.float32)


def _household(k: int, clips: int = 3, seed: int = 0):
    """Clips, their copies (7 noisier views each) and a pool, as 192-d embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, DIM))
    names = [f"p{i}" for i in range(k)]
    x = np.repeat(centres, clips, axis=0) + 0.3 * rng.normal(size=(k * clips, DIM))
    y = np.repeat(names, clips)
    xc = np.repeat(x, 7, axis=0) + 0.6 * rng.normal(size=(k * clips * 7, DIM))
    yc = np.repeat(y, 7)
    pool_c = rng.normal(size=(24, DIM))
    pool = (
        np.repeat(pool_c, 3, axis=0) + 0.3 * rng.normal(size=(72, DIM)),
        np.repeat([f"v{i}" for i in range(24)], 3),
    )
    return x, y, (xc, yc), pool


def test_copies_are_the_seven_channels_deterministic_per_key() -> None:
    wave, talkers = _speech_like(1), [_speech_like(s, 2.0) for s in (2, 3, 4, 5, 6)]
    first = enrollment_copies(wave, "clip-a", talkers)
    assert len(first) == len(CHANNELS) == 7
    again = enrollment_copies(wave, "clip-a", talkers)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    other = enrollment_copies(wave, "clip-b", talkers)
    same = {n for n, a, b in zip(CHANNELS, first, other, strict=True) if np.array_equal(a, b)}
    assert same <= {"phone"}  # another key draws other rooms, noise, babble (a phone codec of two)
    for name, copy in zip(CHANNELS, first, strict=True):
        assert copy.dtype == np.float32 and np.isfinite(copy).all(), name
        n = min(copy.size, wave.size)
        assert not np.allclose(copy[:n], wave[:n], atol=1e-3), f"{name} left the clip unchanged"


def test_bad_clips_and_missing_talkers_are_refused() -> None:
    talkers = [_speech_like(2)]
    with pytest.raises(InvalidInputError, match="mono 16 kHz"):
        channel_copies(np.zeros((2, 16000), np.float32), "k", talkers)
    with pytest.raises(InvalidInputError, match="mono 16 kHz"):
        channel_copies(np.zeros(100, np.float32), "k", talkers)
    with pytest.raises(InvalidInputError, match="talker"):
        enrollment_copies(_speech_like(1), "k", [])


def test_babble_talkers_are_synthesised_once_then_read_from_the_cache(tmp_path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed; run scripts/install_system_deps.sh")
    made = babble_talkers(3, cache_dir=tmp_path)
    assert len(made) == 3 and all(w.size > 16000 for w in made)
    cached = babble_talkers(3, cache_dir=tmp_path)
    assert all(np.allclose(a, b, atol=1 / 32767) for a, b in zip(made, cached, strict=True))
    (cache,) = (tmp_path / "copies").glob("babble-*.npz")
    cache.write_bytes(b"not an npz")  # a damaged cache is rebuilt, never an enrollment error
    again = babble_talkers(3, cache_dir=tmp_path)
    assert all(np.allclose(a, b, atol=1 / 32767) for a, b in zip(made, again, strict=True))


@pytest.mark.parametrize("method", ["softmax", "cosine"])
def test_copies_enter_the_cosine_centroids_and_select_their_tables(method: str) -> None:
    x, y, copies, pool = _household(4)
    plain = OpenSetSpeakerIdentifier(method=method, **SMALL).fit(x, y, pool=pool)
    multi = OpenSetSpeakerIdentifier(method=method, **SMALL).fit(x, y, pool=pool, copies=copies)
    assert multi.copies_used_ and not plain.copies_used_
    assert (plain.table_set, multi.table_set) == ("compensated", "copies")
    rows = np.concatenate([multi._prep(x), multi._prep(copies[0])])
    expected = centroids(rows, [*y, *copies[1]])[1]
    np.testing.assert_allclose(multi.centroids_, expected, atol=1e-5)
    assert not np.allclose(multi.centroids_, plain.centroids_, atol=1e-3)
    table = COPIES_TAILS["softmax+cosine" if method == "softmax" else "cosine"][4]
    assert multi.decision_.tail.params(4) == pytest.approx(table)
    if method == "softmax":
        assert multi.blend_ == cosine_blend_for("softmax", 4, "copies")
        # the adapters train on the clips alone: the same members score the same
        np.testing.assert_allclose(multi.member_scores(x), plain.member_scores(x), atol=1e-5)


def test_copies_survive_save_load_and_a_warm_update(tmp_path) -> None:
    x, y, copies, pool = _household(4)
    clf = OpenSetSpeakerIdentifier(**SMALL).fit(
        x[:9], y[:9], pool=pool, copies=(copies[0][: 9 * 7], copies[1][: 9 * 7])
    )
    loaded = OpenSetSpeakerIdentifier.load(clf.save(tmp_path / "m"))
    assert loaded.copies_used_ and loaded.table_set == "copies"
    np.testing.assert_allclose(loaded.decision_function(x), clf.decision_function(x), atol=1e-5)
    updated = loaded.update(x, y, pool=pool, copies=copies)
    assert updated.update_mode_ == "warm" and updated.copies_used_
    assert updated.blend_ == cosine_blend_for("softmax", 4, "copies")
    again = updated.update(x, y, pool=pool)  # a household without copies: the clean tables
    assert not again.copies_used_ and again.blend_ == cosine_blend_for("softmax", 4, "compensated")


def test_copies_must_cover_exactly_the_enrolled_speakers() -> None:
    x, y, (xc, yc), _ = _household(3)
    clf = OpenSetSpeakerIdentifier(method="cosine")
    some = yc != "p2"
    with pytest.raises(InvalidInputError, match=r"no copies for \['p2'\]"):
        clf.fit(x, y, copies=(xc[some], yc[some]))
    with pytest.raises(InvalidInputError, match=r"unknown speakers \['zed'\]"):
        clf.fit(x, y, copies=(xc, np.where(yc == "p0", "zed", yc)))
    with pytest.raises(InvalidInputError, match="dimension"):
        clf.fit(x, y, copies=(xc[:, :10], yc))
    with pytest.raises(InvalidInputError, match="pair"):
        clf.fit(x, y, copies=xc)


@pytest.mark.parametrize(
    "params",
    [
        {"method": "rpl_v2"},  # no cosine part
        {"cosine_blend": False},  # the adapters alone
        {"method": "cosine", "channel_compensation": False},  # raw: not measured
        {"method": "cosine", "score_norm": "asnorm"},
    ],
)
def test_settings_that_cannot_use_copies_refuse_them(params: dict) -> None:
    x, y, copies, pool = _household(2)
    clf = OpenSetSpeakerIdentifier(**{**SMALL, **params})
    assert not clf.settings.takes_copies
    with pytest.raises(InvalidInputError, match="cannot use them"):
        clf.fit(x, y, pool=pool, copies=copies)


def test_embeddings_of_another_size_refuse_copies() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 32)), np.repeat(["a", "b"], 3)
    with pytest.raises(InvalidInputError, match="not compensated"):
        OpenSetSpeakerIdentifier(method="cosine").fit(x, y, copies=(x, y))


def test_households_beyond_the_measured_size_fit_without_copies(caplog) -> None:
    x, y, copies, _ = _household(COPIES_UP_TO_K + 1, clips=2)
    with caplog.at_level(logging.INFO, logger="speakerrpl.identifier.estimator"):
        clf = OpenSetSpeakerIdentifier(method="cosine").fit(x, y, copies=copies)
    assert not clf.copies_used_ and clf.table_set == "compensated"
    assert "fitting without them" in caplog.text
    np.testing.assert_allclose(clf.centroids_, centroids(clf._prep(x), list(y))[1], atol=1e-5)


def test_the_registry_keeps_copies_per_clip_and_drops_a_person_with_a_clip_without(
    tmp_path,
) -> None:
    reg = SpeakerRegistry(tmp_path / "reg.db")
    rng = np.random.default_rng(0)
    clip = [Enrollment(rng.normal(size=8), copies=rng.normal(size=(7, 8))) for _ in range(3)]
    bare = Enrollment(rng.normal(size=8))
    snap = reg.snapshot()
    reg.commit(snap.data_version, "toy", add={"ann": clip[:2], "bob": [clip[2], bare]},
               model_kind="identifier", model_classes=["ann", "bob"])  # fmt: skip
    snap = reg.snapshot()
    assert set(snap.copies) == {"ann"} and snap.copy_arrays() is None  # bob has a bare clip
    np.testing.assert_array_equal(
        snap.copies["ann"], np.concatenate([c.copies for c in clip[:2]]).astype(np.float32)
    )
    reg.commit(snap.data_version, "toy", remove=["bob"], model_kind="identifier",
               model_classes=["ann"])  # fmt: skip
    xc, yc = reg.snapshot().copy_arrays()
    assert xc.shape == (14, 8) and set(yc) == {"ann"}
    with pytest.raises(Exception, match="channel copies of shape"):
        reg.commit(
            reg.snapshot().data_version,
            "toy",
            model_kind="identifier",
            model_classes=["ann", "cy"],
            add={"cy": [Enrollment(rng.normal(size=8), copies=rng.normal(size=(7, 5)))]},
        )


def test_a_schema_2_registry_is_migrated_with_its_clips_kept_and_no_copies(tmp_path) -> None:
    path = tmp_path / "old.db"
    reg = SpeakerRegistry(path)
    snap = reg.snapshot()
    reg.commit(snap.data_version, "toy", add={"ann": [Enrollment(np.ones(4))] * 2},
               model_kind="identifier", model_classes=["ann"])  # fmt: skip
    con = sqlite3.connect(path)  # make it what version 2 wrote: no copies column
    con.execute("ALTER TABLE enrollments DROP COLUMN copies")
    con.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    con.commit()
    con.close()
    snap = SpeakerRegistry(path, read_only=True).snapshot()  # read-only: not migrated
    assert snap.embeddings["ann"].shape == (2, 4) and snap.copies == {}
    snap = SpeakerRegistry(path).snapshot()
    assert snap.embeddings["ann"].shape == (2, 4) and snap.copies == {}
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("3",)
    con.close()
