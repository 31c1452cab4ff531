"""Stranger-score tails measured on development folds, per method and household size K.

Each entry is ``{K: (mean, std)}`` of a normal matched to the 90 % / 99 % quantiles of the
fused raw scores of every (stranger utterance, enrolled target) trial, over the clean, babble20
and noise20 tests of the development half of the demo corpus (CAM++, 3 enrollment clips per
target, the method's default recipe, 30 members, pool = the demo pool's 64 espeak-ng voices).
The speakers of that half are never used for the report tables. Regenerate with::

    PYTHONPATH=src python benchmarks/household/study.py --half dev --k 1 2 4 8 20 --folds 5
    PYTHONPATH=src python benchmarks/household/tails.py /tmp/i12study/dev

A tail is exact for the recipe it was measured with (:func:`table_tail` checks the settings);
other recipes of the same method use it as the nearest measurement (``table-approx``, logged),
and methods without a table, AS-norm scores and other frontends fit a tail at enrollment.
"""

from __future__ import annotations

from typing import Any

from speakerrpl.identifier.calibration import StrangerTail

#: frontend the tails were measured with
FRONTEND = "campplus"

TAILS: dict[str, dict[int, tuple[float, float]]] = {
    "cosine": {1: (0.2647, 0.1518), 2: (0.2541, 0.1356), 4: (0.3077, 0.1439),
               8: (0.2504, 0.1592), 20: (0.2939, 0.1446)},
    "rpl_v1": {1: (1.284, 1.004), 2: (-0.4022, 0.5041), 4: (-0.905, 1.1361),
               8: (-1.1211, 1.3752), 20: (-0.9285, 1.2428)},
    "rpl_v2": {1: (1.4118, 0.7876), 2: (0.3596, 1.2174), 4: (0.3665, 1.3169),
               8: (-0.315, 1.3466), 20: (-0.5938, 1.2434)},
    "softmax": {1: (1.3422, 1.0271), 2: (0.1699, 0.5732), 4: (-0.6325, 1.1074),
                8: (-1.0493, 1.3897), 20: (-0.8445, 1.1828)},
    "arpl": {1: (1.4219, 1.0301), 2: (-0.2563, 0.5015), 4: (-0.8329, 1.1377),
             8: (-1.0771, 1.3864), 20: (-0.8576, 1.2589)},
    "rpl_v1_plus": {1: (1.284, 1.004), 2: (-0.3196, 0.5262), 4: (-1.1545, 1.4202),
                    8: (-1.4121, 1.6707), 20: (-1.2216, 1.5974)},
}  # fmt: skip

# settings that do not change the scores a fit produces
_DEPLOYMENT = {
    "target_far", "calibration", "calibration_margin", "threshold", "confidence_threshold",
    "unknown_label", "random_state", "device", "frontend", "min_utterances", "n_calibration",
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


def table_tail(settings: Any) -> tuple[StrangerTail | None, str]:
    """The measured tail of ``settings``' method and how well it applies.

    Returns ``(tail, "table")`` for the method's default recipe, ``(tail, "table-approx")`` for
    another recipe of a method with a table (the nearest measurement there is: on development
    folds an enrollment-fitted tail accepted 84 % of strangers for rpl_v2 with a non-default
    recipe), and ``(None, "")`` for a method without one or another frontend.
    """
    from speakerrpl.identifier.settings import IdentifierSettings

    table = TAILS.get(settings.method)
    if table is None or settings.frontend not in (None, FRONTEND):
        return None, ""
    if getattr(settings, "score_norm", "none") != "none":
        return None, ""  # normalised scores live on another scale than the table
    exact = recipe(settings) == recipe(IdentifierSettings(method=settings.method))
    return StrangerTail.from_table(table), "table" if exact else "table-approx"


__all__ = ["FRONTEND", "TAILS", "recipe", "table_tail"]
