"""Stranger-score tails measured on development folds, per method and household size K.

Each entry is ``{K: (mean, std)}`` of a normal matched to the 90 % / 99 % quantiles of the
fused raw scores of every (stranger utterance, enrolled target) trial (its mean raised where
it would accept more than 1 % of the strangers' best scores in sample) in the development half
of the demo corpus (CAM++, 3 clean enrollment clips per target, the method's default recipe,
30 members, pool = the demo pool's 64 espeak-ng voices), for the test condition with the
heaviest tail (the one that needs the highest threshold at 1 %; on this corpus almost always
clean speech: strangers on the enrollment channel score highest), so the requested rate holds
in every condition rather than on average. ``softmax+cosine`` is the default blend
(:mod:`speakerrpl.identifier.blend`) with the weights of :data:`BLEND_WEIGHTS`. The speakers
of that half are never used for the report tables. Regenerate with::

    PYTHONPATH=src python benchmarks/household/study.py --half dev --k 1 2 4 8 20 --folds 5 \
        --configs cosine softmax_f30 rpl_v2 rpl_v1_f30 arpl_f30 rpl_v1_plus_f30
    PYTHONPATH=src python benchmarks/household/tables.py /tmp/i12s/dev --blend softmax_f30

A tail is exact for the recipe it was measured with (:func:`table_tail` checks the settings);
other recipes of the same method use it as the nearest measurement (``table-approx``, logged),
and methods without a table, AS-norm scores and other frontends fit a tail at enrollment.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from speakerrpl.identifier.calibration import StrangerTail
from speakerrpl.identifier.channel import SHIPPED as SHIPPED_CHANNEL_MODELS
from speakerrpl.identifier.conditions import SHIPPED as SHIPPED_CONDITION_MODELS

#: frontend the tails were measured with
FRONTEND = "campplus"

TAILS: dict[str, dict[int, tuple[float, float]]] = {
    "cosine": {1: (0.2873, 0.1311), 2: (0.1658, 0.1819), 4: (0.2684, 0.1301),
        8: (0.2113, 0.165), 20: (0.2075, 0.1613)},
    "rpl_v1": {1: (1.2729, 1.1041), 2: (-0.4634, 0.573), 4: (-0.6214, 1.0313),
        8: (-1.1197, 1.4236), 20: (-0.3027, 1.1595)},
    "rpl_v2": {1: (1.1512, 1.0492), 2: (-0.2407, 1.593), 4: (0.2666, 1.2168),
        8: (-0.6287, 1.4766), 20: (0.1863, 1.0139)},
    "softmax": {1: (1.2712, 0.9943), 2: (0.1848, 0.5671), 4: (-0.4484, 1.0883),
        8: (-1.0917, 1.4908), 20: (-0.3288, 1.1259)},
    "arpl": {1: (1.3677, 1.1519), 2: (-0.3377, 0.5621), 4: (-0.5931, 1.0548),
        8: (-1.0855, 1.4479), 20: (-0.1835, 1.1703)},
    "rpl_v1_plus": {1: (1.2729, 1.1041), 2: (-0.3384, 0.7035), 4: (-0.6739, 1.1446),
        8: (-1.4325, 1.728), 20: (-1.1073, 1.5441)},
    "softmax+cosine": {1: (-0.0, 1.0), 2: (0.0129, 0.9611), 4: (-0.1284, 1.0239),
        8: (-0.0351, 0.9926), 20: (-0.5116, 1.1337)},
}  # fmt: skip

#: method -> {K: weight of the cosine score} in the default blend (speakerrpl.identifier.blend),
#: chosen on the same development folds by mean EER over the test conditions
BLEND_WEIGHTS: dict[str, dict[int, float]] = {
    "softmax": {1: 0.0, 2: 0.6, 4: 0.5, 8: 0.4, 20: 0.2},
}

#: the same measurements on channel-compensated embeddings (:mod:`speakerrpl.identifier.channel`,
#: the default where a table exists), on the development half plus the 64 voices only the full
#: build has (``--half devplus``): 20 folds per K for K <= 8 and K = 100 (14 strangers each), 10
#: for K = 20 and 5 for K = 50 for cosine, softmax and their blend, 5 for the others
#: (D = /tmp/i12c, ``--half devplus``):
#:   study.py --half devplus --k 1 2 4 8 --folds 20 --configs cosine_wccn softmax_f30_wccn --out D
#:   study.py --half devplus --k 20 --folds 10 --configs cosine_wccn softmax_f30_wccn --out D
#:   study.py --half devplus --k 50 --folds 5 --configs cosine_wccn softmax_f30_wccn --out D
#:   study.py --half devplus --k 100 --folds 20 --configs cosine_wccn softmax_f30_wccn --out D
#:   study.py --half devplus --k 1 2 4 8 20 --folds 5 --configs rpl_v2_wccn --out D
#:   study.py --half devplus --k 1 2 4 8 20 --folds 5 \
#:       --configs rpl_v1_f30 arpl_f30 rpl_v1_plus_f30 --tag _wccn --out D \
#:       --extra '{"channel_compensation": true}'
#:   tables.py D/devplus --cosine cosine_wccn --blend softmax_f30_wccn
COMPENSATED_TAILS: dict[str, dict[int, tuple[float, float]]] = {
    "cosine": {1: (0.1629, 0.1605), 2: (0.1497, 0.1626), 4: (0.1827, 0.1527),
        8: (0.171, 0.1554), 20: (0.1687, 0.1611), 50: (0.1676, 0.1604),
        100: (0.1783, 0.1517)},
    "rpl_v1": {1: (0.0032, 1.2375), 2: (-0.2732, 0.6152), 4: (-0.4744, 0.9616),
        8: (-0.6938, 1.1088), 20: (-0.792, 1.2476)},
    "rpl_v2": {1: (0.0524, 1.1852), 2: (0.3347, 1.3144), 4: (-0.0589, 1.3006),
        8: (-0.291, 1.206), 20: (-0.4471, 1.1669)},
    "softmax": {1: (0.0898, 1.1081), 2: (0.003, 0.7203), 4: (-0.4242, 0.987),
        8: (-0.6215, 1.1087), 20: (-0.7063, 1.1708), 50: (-0.2661, 0.9569),
        100: (0.0552, 0.9085)},
    "arpl": {1: (0.0944, 1.2642), 2: (-0.1834, 0.6249), 4: (-0.4199, 0.974),
        8: (-0.6259, 1.1186), 20: (-0.7245, 1.2673)},
    "rpl_v1_plus": {1: (0.0032, 1.2375), 2: (-0.2434, 0.7242), 4: (-0.6675, 1.1954),
        8: (-0.9546, 1.3596), 20: (-1.1369, 1.5727)},
    "softmax+cosine": {1: (-0.0026, 1.0008), 2: (-0.0222, 0.943), 4: (-0.0716, 0.9909),
        8: (-0.0784, 0.9927), 20: (-0.0544, 1.0045), 50: (-0.0783, 1.0101),
        100: (-0.0821, 1.0028)},
}  # fmt: skip

COMPENSATED_BLEND_WEIGHTS: dict[str, dict[int, float]] = {
    "softmax": {1: 0.3, 2: 0.7, 4: 0.6, 8: 0.3, 20: 0.1, 50: 0.1, 100: 0.1},
}

#: the same measurements with **multi-condition enrollment** of the cosine part: each target's
#: centroid is taken over its clean enrollment clips and seven channel copies of each
#: (:mod:`speakerrpl.synth.enrollment_copies`; ``fit(..., copies=)``), the adapters still train on
#: the clean clips. Development half plus the 64 extra voices, compensated embeddings, 20 folds
#: per K <= 8 and 10 at K = 20 (docs/results.md, "Copies for the cosine centroid only"):
#:   enrollment_copies.py --devplus-copies /tmp/enrollment_copies_devplus.npz
#:   study.py --half devplus --enroll-copies /tmp/enrollment_copies_devplus.npz \
#:       --k 1 2 4 8 --folds 20 --configs cosine_wccn --out D   (and --k 20 --folds 10)
#:   tables.py D/devplus --cosine cosine_wccn --cosine-suffix=-multi --blend softmax_f30_wccn
#: Measured up to K = 20 (:data:`COPIES_UP_TO_K`); the adapters' tail is the compensated one.
COPIES_TAILS: dict[str, dict[int, tuple[float, float]]] = {
    "cosine": {1: (0.1584, 0.1702), 2: (0.1526, 0.1696), 4: (0.1914, 0.1496),
        8: (0.1598, 0.1621), 20: (0.1561, 0.169)},
    "softmax": {k: v for k, v in COMPENSATED_TAILS["softmax"].items() if k <= 20},
    "softmax+cosine": {1: (0.0, 1.0), 2: (-0.0458, 0.9566), 4: (-0.0462, 0.9817),
        8: (-0.0255, 0.9708), 20: (-0.0803, 0.9933)},
}  # fmt: skip

COPIES_BLEND_WEIGHTS: dict[str, dict[int, float]] = {
    "softmax": {1: 1.0, 2: 0.8, 4: 0.7, 8: 0.4, 20: 0.2},
}

#: the largest household the copies' tables were measured for: larger enrollments fit without
#: the copies (on the compensated tables, which were measured up to K = 100)
COPIES_UP_TO_K = 20

#: the table sets: raw embeddings, channel-compensated, compensated with enrollment copies
RAW, COMPENSATED, COPIES = "raw", "compensated", "copies"

#: **per-condition** stranger tails of the default blend (``softmax+cosine``) for the
#: quality-aware decision (``calibration="quality"``, :mod:`speakerrpl.identifier.conditions`):
#: table set -> K -> test condition -> ``(mean, std)``, each measured as the heaviest tail above
#: but on one condition's strangers, on the same development fits (compensated: the
#: ``--half devplus`` fits of :data:`COMPENSATED_TAILS`; copies: those of :data:`COPIES_TAILS`),
#: every mean then raised by the smallest shift with which, on those fits and with the condition
#: classifier cross-fitted (its posterior taken relative to each fold's enrollment clips,
#: ``conditions.mismatch_posterior``, as the identifier reads it), each fold's worst
#: condition let in no more strangers at 1 %, on average, than the single tail did
#: (``--criterion fold-worst``):
#:   condition_tails.py --dev D/devplus --report D/report [--table-set copies]
CONDITION_TAILS: dict[str, dict[int, dict[str, tuple[float, float]]]] = {
    COMPENSATED: {
        1: {
            "clean": (0.0428, 1.0008), "device": (-0.0124, 0.9111), "codec": (-0.0295, 0.8349),
            "phone": (-0.0598, 0.8515), "far": (-0.001, 0.8345), "babble": (-0.0054, 0.8969),
            "noise": (0.043, 0.9548), "music": (-0.0195, 0.9653), "short": (0.0898, 0.8407),
            "short_far": (-0.085, 0.7474),
        },
        2: {
            "clean": (0.0047, 0.943), "device": (-0.1367, 0.9032), "codec": (-0.1676, 0.8352),
            "phone": (-0.0696, 0.8323), "far": (-0.0948, 0.8329), "babble": (-0.1429, 0.9104),
            "noise": (0.0028, 0.8998), "music": (-0.0481, 0.9231), "short": (-0.0119, 0.853),
            "short_far": (-0.1606, 0.7699),
        },
        4: {
            "clean": (-0.0658, 0.9907), "device": (-0.1782, 0.9288), "codec": (-0.2153, 0.8685),
            "phone": (-0.1173, 0.8362), "far": (-0.1758, 0.8709), "babble": (-0.156, 0.9355),
            "noise": (-0.0294, 0.932), "music": (-0.0965, 0.9602), "short": (-0.1149, 0.9047),
            "short_far": (-0.1774, 0.7619),
        },
        8: {
            "clean": (-0.0647, 0.9928), "device": (-0.0695, 0.9104), "codec": (0.0166, 0.8076),
            "phone": (0.0006, 0.8169), "far": (0.0694, 0.8335), "babble": (-0.0658, 0.9135),
            "noise": (0.0774, 0.9062), "music": (-0.1156, 0.9776), "short": (0.0283, 0.8756),
            "short_far": (0.121, 0.7197),
        },
        20: {
            "clean": (-0.047, 1.0046), "device": (0.1108, 0.896), "codec": (0.2426, 0.7645),
            "phone": (0.2392, 0.7884), "far": (0.2125, 0.7885), "babble": (0.2316, 0.8771),
            "noise": (0.1387, 0.9002), "music": (0.0642, 0.9519), "short": (0.1098, 0.8578),
            "short_far": (0.356, 0.6569),
        },
    },
    COPIES: {
        1: {
            "clean": (0.0837, 0.9657), "device": (0.0231, 0.9954), "codec": (0.1115, 0.9003),
            "phone": (0.0577, 0.9997), "far": (0.0629, 0.863), "babble": (0.0397, 0.8854),
            "noise": (0.1515, 0.9204), "music": (0.0193, 0.9399), "short": (0.1185, 0.8191),
            "short_far": (-0.1633, 0.8324),
        },
        2: {
            "clean": (0.0199, 0.932), "device": (-0.0331, 0.9325), "codec": (-0.0844, 0.9278),
            "phone": (0.0054, 0.9563), "far": (-0.0249, 0.8555), "babble": (-0.097, 0.9153),
            "noise": (0.0447, 0.9179), "music": (0.0006, 0.9054), "short": (0.0152, 0.8413),
            "short_far": (-0.1488, 0.8064),
        },
        4: {
            "clean": (-0.0303, 0.9816), "device": (-0.1242, 1.0023), "codec": (-0.0832, 0.9282),
            "phone": (0.0014, 0.9386), "far": (-0.1232, 0.903), "babble": (-0.1329, 0.956),
            "noise": (0.049, 0.9387), "music": (-0.0388, 0.9469), "short": (-0.1054, 0.9133),
            "short_far": (-0.2049, 0.8134),
        },
        8: {
            "clean": (-0.006, 0.971), "device": (-0.0204, 0.918), "codec": (0.0365, 0.8375),
            "phone": (0.0868, 0.8413), "far": (0.0719, 0.8438), "babble": (0.0135, 0.8914),
            "noise": (0.1085, 0.8974), "music": (-0.0578, 0.9547), "short": (0.0561, 0.8572),
            "short_far": (0.1146, 0.7332),
        },
        20: {
            "clean": (-0.0198, 0.9933), "device": (0.1361, 0.8995), "codec": (0.2708, 0.7783),
            "phone": (0.2399, 0.8079), "far": (0.2192, 0.7946), "babble": (0.2321, 0.8802),
            "noise": (0.1486, 0.9018), "music": (0.065, 0.9449), "short": (0.1331, 0.8514),
            "short_far": (0.3365, 0.6689),
        },
    },
}  # fmt: skip

#: the largest household size at which the tables' thresholds were checked on strangers no
#: choice used (the report half holds 50 voices). At K = 50 and 100, checked with development
#: households and the report half as strangers, the default let 3.8 % and 5.4 % in at
#: ``target_far=0.01`` while compensated cosine held (0.4 %, 0.6 %): docs/calibration.md, "Limits"
CHECKED_UP_TO_K = 20
#: methods whose tables also held at K = 50 and 100 in that check
HELD_BEYOND_CHECKED_K = ("cosine",)

# settings that do not change the scores a fit produces
_DEPLOYMENT = {
    "target_far", "calibration", "calibration_margin", "threshold", "confidence_threshold",
    "unknown_label", "random_state", "device", "frontend", "min_utterances", "n_calibration",
    "channel_compensation",  # selects the table set (tables()), not a recipe
}  # fmt: skip


def recipe(settings: Any) -> dict[str, Any]:
    """The settings that shape a method's scores (what a tail was measured with).

    Example:
        >>> from speakerrpl.identifier.settings import IdentifierSettings
        >>> recipe(IdentifierSettings(method="cosine", target_far=0.1))
        {'method': 'cosine', 'input_norm': 'l2', 'score_norm': 'none'}
    """
    values = settings.to_dict()
    spec = settings.method_spec
    if not spec.trains:
        keys = ("method", "input_norm", "score_norm")
        return {k: values[k] for k in keys if k in values}
    out = {k: v for k, v in values.items() if k not in _DEPLOYMENT}
    out["selection_r"] = settings.members_dropped  # None resolves to n_models // 3
    out["cosine_blend"] = settings.blends
    if not spec.has_points:
        out.pop("selection", None)
        out.pop("selection_r", None)
    for name in (
        "tau", "use_logitnorm", "centre_init", "score", "weight_margin", "temperature", "beta",
    ):  # fmt: skip
        if name not in spec.loss_params and name != "score":
            out.pop(name, None)
    if not spec.has_points:
        out.pop("score", None)
    return out


def measured_data_fingerprint() -> str:
    """A hash of every measured table and shipped channel model a fit's scores depend on.

    Caches of fitted results (``speakerrpl evaluate`` resumes from them) key on it, so a
    re-measured table or a refitted channel model refits instead of reusing stale scores.

    Example:
        >>> len(measured_data_fingerprint())
        16
    """
    digest = hashlib.sha256()
    tables_json = [
        TAILS,
        BLEND_WEIGHTS,
        COMPENSATED_TAILS,
        COMPENSATED_BLEND_WEIGHTS,
        COPIES_TAILS,
        COPIES_BLEND_WEIGHTS,
        COPIES_UP_TO_K,
        CONDITION_TAILS,
    ]
    digest.update(json.dumps(tables_json, sort_keys=True, default=str).encode())
    shipped = [*SHIPPED_CHANNEL_MODELS.items(), *SHIPPED_CONDITION_MODELS.items()]
    for name, path in sorted(shipped):
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.is_file() else b"missing")
    return digest.hexdigest()[:16]


def tables(
    table_set: str,
) -> tuple[dict[str, dict[int, tuple[float, float]]], dict[str, dict[int, float]]]:
    """``(tails, blend weights)`` of one table set: :data:`RAW`, :data:`COMPENSATED` or
    :data:`COPIES`."""
    sets = {
        RAW: (TAILS, BLEND_WEIGHTS),
        COMPENSATED: (COMPENSATED_TAILS, COMPENSATED_BLEND_WEIGHTS),
        COPIES: (COPIES_TAILS, COPIES_BLEND_WEIGHTS),
    }
    return sets[table_set]


def table_tail(settings: Any, table_set: str = RAW) -> tuple[StrangerTail | None, str]:
    """The measured tail of ``settings``' method and how well it applies.

    ``table_set`` says what the fit scores: raw embeddings (:data:`RAW`), channel-compensated
    ones (:data:`COMPENSATED`) or compensated ones with copies in the cosine centroids
    (:data:`COPIES`); see :func:`tables`.

    Returns ``(tail, "table")`` for the method's default recipe, ``(tail, "table-approx")`` for
    another recipe of a method with a table (the nearest measurement there is: on development
    folds an enrollment-fitted tail accepted 84 % of strangers for rpl_v2 with a non-default
    recipe), and ``(None, "")`` for a method without one or another frontend.
    """
    from speakerrpl.identifier.settings import IdentifierSettings

    blends = settings.blends
    table = tables(table_set)[0].get(f"{settings.method}+cosine" if blends else settings.method)
    if table is None or settings.frontend not in (None, FRONTEND):
        return None, ""
    if getattr(settings, "score_norm", "none") != "none":
        return None, ""  # normalised scores live on another scale than the table
    default = IdentifierSettings(method=settings.method, cosine_blend=blends)
    exact = recipe(settings) == recipe(default)
    return StrangerTail.from_table(table), "table" if exact else "table-approx"


def condition_tails(
    settings: Any, table_set: str, k: int
) -> tuple[tuple[str, StrangerTail], ...] | None:
    """The per-condition tails (:data:`CONDITION_TAILS`) of an exact default-recipe fit, or
    ``None`` where none was measured (another recipe, method, table set, or K beyond
    :data:`CHECKED_UP_TO_K`)."""
    by_k = CONDITION_TAILS.get(table_set)
    if (
        by_k is None
        or k > CHECKED_UP_TO_K
        or not (settings.method == "softmax" and settings.blends)
    ):
        return None
    if table_tail(settings, table_set)[1] != "table":
        return None
    names = tuple(next(iter(by_k.values())))
    return tuple((c, StrangerTail.from_table({q: by_k[q][c] for q in by_k})) for c in names)


__all__ = [
    "BLEND_WEIGHTS",
    "CHECKED_UP_TO_K",
    "COMPENSATED",
    "COMPENSATED_BLEND_WEIGHTS",
    "COMPENSATED_TAILS",
    "CONDITION_TAILS",
    "COPIES",
    "COPIES_BLEND_WEIGHTS",
    "COPIES_TAILS",
    "COPIES_UP_TO_K",
    "FRONTEND",
    "HELD_BEYOND_CHECKED_K",
    "RAW",
    "TAILS",
    "condition_tails",
    "measured_data_fingerprint",
    "recipe",
    "table_tail",
    "tables",
]
