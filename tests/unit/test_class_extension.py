"""Class extension: unknown voices under the bound, alternating order, adaptive anchors, and
the per-target rule."""

from __future__ import annotations

import numpy as np
import pytest

from speakerrpl.errors import InvalidInputError
from speakerrpl.identifier.class_extension import centroids, select_class_extension


def _setup(seed: int = 0):
    rng = np.random.default_rng(seed)
    tgt_mu = rng.normal(size=(3, 16))
    tgt = np.repeat(tgt_mu, 3, axis=0) + 0.05 * rng.normal(size=(9, 16))
    names = np.repeat(["a", "b", "c"], 3)
    near = tgt_mu + 0.3 * rng.normal(size=(3, 16))  # one close voice per target
    far_mu = np.vstack([near, rng.normal(size=(30, 16))])
    pool = np.repeat(far_mu, 2, axis=0) + 0.05 * rng.normal(size=(66, 16))
    voices = np.repeat([f"v{i:02d}" for i in range(33)], 2)
    return tgt, names, pool, voices


def test_anchors_are_the_nearest_voice_of_each_target() -> None:
    tgt, names, pool, voices = _setup()
    ext = select_class_extension(tgt, names, pool, voices, n_unknown=5, n_anchors=1, bound=0.3)
    assert ext.anchors == ("v00", "v01", "v02")
    assert not set(ext.unknown) & set(ext.anchors)
    assert len(set(ext.unknown) | set(ext.anchors) | set(ext.rest)) == 33


def test_unknowns_are_below_bound_and_alternate_most_least_similar() -> None:
    tgt, names, pool, voices = _setup()
    ext = select_class_extension(tgt, names, pool, voices, n_unknown=6, n_anchors=1, bound=0.2)
    _, tc = centroids(tgt, names)
    vn, vc = centroids(pool, voices)
    mean_sim = dict(zip(vn, (vc @ tc.T).mean(axis=1), strict=True))
    sims = [mean_sim[v] for v in ext.unknown]
    assert all(s < 0.2 for s in sims)
    eligible = sorted(s for v, s in mean_sim.items() if s < 0.2 and v not in ext.anchors)
    assert sims[0] == eligible[-1] and sims[1] == eligible[0]
    assert sims[2] == eligible[-2] and sims[3] == eligible[1]


def test_deterministic_for_a_seed() -> None:
    tgt, names, pool, voices = _setup(3)
    a = select_class_extension(tgt, names, pool, voices, n_unknown=4, random_state=7)
    b = select_class_extension(tgt, names, pool, voices, n_unknown=4, random_state=7)
    assert a == b


def test_per_target_rule_bounds_each_target_and_gives_each_its_hardest_negative() -> None:
    tgt, names, pool, voices = _setup()
    _, tc = centroids(tgt, names)
    # a voice similar to targets a and b, far from c: over the bound on the mean, under it for c
    ortho = np.linalg.svd(tc)[2][-1]
    both = (tc[0] + tc[1]) / np.linalg.norm(tc[0] + tc[1])
    mixed = 0.8 * both + 0.6 * ortho
    pool = np.vstack([pool, np.repeat(mixed[None], 2, axis=0)])
    voices = np.concatenate([voices, ["mixed", "mixed"]])
    vn, vc = centroids(pool, voices)
    sim = dict(zip(vn, vc @ tc.T, strict=True))
    assert sim["mixed"].mean() > 0.3 > sim["mixed"][2]
    mean_rule = select_class_extension(tgt, names, pool, voices, n_unknown=40, bound=0.3)
    ext = select_class_extension(tgt, names, pool, voices, 40, bound=0.3, rule="per_target")
    assert "mixed" not in mean_rule.unknown and "mixed" in ext.unknown
    assert ext.anchors == mean_rule.anchors
    free = [v for v in vn if v not in ext.anchors and sim[v].min() < 0.3]
    assert sorted(ext.unknown) == sorted(free)  # 40 requested: every allowed voice
    small = select_class_extension(tgt, names, pool, voices, 6, bound=0.3, rule="per_target")
    for i, voice in enumerate(small.unknown):
        # even picks: targets a, b, c in turn take their most similar voice below the bound
        # for them; odd picks: the voice farthest from every target
        if i % 2 == 0:
            want = max((v for v in free if sim[v][i // 2] < 0.3), key=lambda v: sim[v][i // 2])
        else:
            want = min(free, key=lambda v: sim[v].max())
        assert voice == want
        free.remove(voice)
    with pytest.raises(InvalidInputError, match="rule must be one of"):
        select_class_extension(tgt, names, pool, voices, rule="median")
