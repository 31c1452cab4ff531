"""The estimator users hold: enroll a few speakers, then name them or reject strangers.

:class:`OpenSetSpeakerIdentifier` works on embeddings only (see :mod:`speakerrpl.frontends`
for turning audio into embeddings). Its parts: validated settings, the training set with its
class extension from the synthetic pool, threshold calibration, score fusion with
eigenvalue-variance member selection, and save/load.
"""

from speakerrpl.identifier.estimator import OpenSetSpeakerIdentifier
from speakerrpl.identifier.settings import PUBLISHED_TRAINING, IdentifierSettings

__all__ = ["PUBLISHED_TRAINING", "IdentifierSettings", "OpenSetSpeakerIdentifier"]
