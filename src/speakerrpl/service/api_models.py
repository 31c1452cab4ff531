"""Typed request and response bodies of the speaker-management endpoints (OpenAPI schemas)."""

from __future__ import annotations

from typing import Any, Literal

from speakerrpl._optional import require

require("pydantic", extra="service", purpose="the REST service")

from pydantic import BaseModel, ConfigDict, Field  # noqa: E402

__all__ = [
    "ChangeResult",
    "Clip",
    "ClipList",
    "EnrollWarning",
    "IdentifyResult",
    "IdentifyResults",
    "JobState",
    "SpeakerDetail",
    "SpeakerList",
    "SpeakerSummary",
    "ThresholdChange",
    "ThresholdInfo",
    "VerifyResult",
    "Voiceprint",
]


class EnrollWarning(BaseModel):
    """Something about an enrollment the caller should look at (it was still enrolled)."""

    clip: str | None = Field(None, description="the clip concerned, when one is")
    code: Literal["duplicate", "matches-other-speaker", "no-channel-copies"]
    other: str | None = Field(None, description="the other enrolled person it sounds like")
    message: str


class ChangeResult(BaseModel):
    """The registry after an enrollment, a removal or an import."""

    model_config = ConfigDict(extra="allow")
    model_version: int
    kind: str = Field(description="identifier, cosine (one speaker), paused or empty")
    speakers: list[str]
    refit_seconds: float = 0.0
    update: Literal["warm", "cold"] | None = Field(
        None,
        description="how the model was refitted: warm (the previous model updated in seconds) "
        "or cold (trained from scratch); absent when nothing was refitted",
    )
    enrollment_copies: bool | None = Field(
        None,
        description="whether the model was fitted with every clip's channel copies "
        "(multi-condition enrollment); absent when nothing was refitted",
    )
    warnings: list[EnrollWarning] = []


class VerifyResult(BaseModel):
    """Is the clip this person? ``accepted`` when ``confidence >= threshold``."""

    name: str
    accepted: bool
    confidence: float
    threshold: float
    model_version: int


class Clip(BaseModel):
    """One enrollment clip (its embedding is never listed)."""

    id: int
    source: str | None
    created: float = Field(description="Unix time")
    has_audio: bool = Field(description="whether the audio itself is stored (keep_audio)")
    n_copies: int = Field(
        0, description="channel copies stored with it (multi-condition enrollment)"
    )


class ClipList(BaseModel):
    """The enrollment clips of one person."""

    name: str
    clips: list[Clip]


class SpeakerDetail(ClipList):
    """One enrolled person."""

    created: float = Field(description="Unix time of the first enrollment")
    n_enrollments: int


class ThresholdInfo(BaseModel):
    """The acceptance threshold in force (on the model's score scale)."""

    threshold: float | None
    pinned: bool = Field(description="a fixed value set by PUT /threshold {threshold}")
    far: float = Field(description="target false-acceptance rate of the calibration")
    model_version: int
    kind: str


class ThresholdChange(BaseModel):
    """Give exactly one: a target false-acceptance rate (refit) or a fixed threshold."""

    model_config = ConfigDict(extra="forbid")
    far: float | None = Field(
        None, ge=1e-6, lt=1, description="target false-acceptance rate, 1e-6 <= far < 1"
    )
    threshold: float | None = None


class Voiceprint(BaseModel):
    """One person's enrollment embeddings, to move them between registries (biometric data)."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["speakerrpl-voiceprint"]
    format_version: Literal[1]
    name: str
    created: float | None = None
    frontend: str
    dim: int = Field(gt=0, le=4096)
    count: int = Field(gt=0, le=256)
    embeddings: str = Field(description="count x dim float32 little-endian, base64")
    sources: list[str | None] | None = None
    copies_per_clip: int | None = Field(
        None, gt=0, le=16, description="channel copies per clip, when every clip has them"
    )
    copies: str | None = Field(
        None, description="count x copies_per_clip x dim float32 little-endian, base64"
    )
    versions: dict[str, Any] = {}


class JobState(BaseModel):
    """A background enrollment: poll ``GET /jobs/{job_id}`` until ``done`` or ``failed``."""

    job_id: str
    kind: str
    status: Literal["queued", "running", "done", "failed"]
    created: float
    finished: float | None = None
    status_url: str | None = None
    result: dict[str, Any] | None = Field(None, description="the enrollment's answer when done")
    status_code: int | None = Field(None, description="the HTTP status it failed with")
    error: dict[str, Any] | None = Field(None, description="the error body when failed")


class IdentifyResult(BaseModel):
    """One clip's decision. Callers without the key get ``speaker`` (and ``score`` when
    accepted) only; ``error`` replaces the decision for an unreadable clip (``partial=true``)."""

    model_config = ConfigDict(extra="allow")
    file: str
    speaker: str | None = Field(description="the enrolled name, <unknown>, or null on error")
    confidence: float | None = Field(None, description="see speakerrpl.decisions")
    confidence_threshold: float | None = None
    score: float | None = Field(None, description="raw best score")
    threshold: float | None = Field(None, description="raw threshold")
    best_match: str | None = None
    scores: dict[str, float] | None = None
    model_version: int | None = None
    error: dict[str, Any] | None = None


class IdentifyResults(BaseModel):
    """``POST /identify``: one result per uploaded clip, in upload order."""

    results: list[IdentifyResult]


class SpeakerSummary(BaseModel):
    """One enrolled person in ``GET /speakers``."""

    name: str
    created: float = Field(description="Unix time of the first enrollment")
    n_enrollments: int


class SpeakerList(BaseModel):
    """``GET /speakers``."""

    speakers: list[SpeakerSummary]
