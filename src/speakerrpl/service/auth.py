"""Who may call what: the one access rule every route of the REST service goes through.

Each route declares its :class:`Access` level with ``Depends(guard(Access.X))`` and receives a
:class:`Caller`. New endpoints (e.g. the Home Assistant ones) pick a level; nothing else checks
keys. The rule, with the API key configured (``SPEAKERRPL_API_KEY``):

=================  ==================================================================
``PUBLIC``         anyone (``/healthz``, which reveals nothing, and the OpenAPI docs)
``IDENTIFY``       the key, or anyone when ``public_identify`` is on; callers without
                   the key get :func:`redact`-ed answers (no other person's score, no
                   ``best_match`` of a rejected clip)
``VOICEPRINTS``    the key (anything that lists, reveals or exports voiceprints)
``WRITE``          the key (enroll, remove, refit)
=================  ==================================================================

Without a key (the server then binds to loopback only, unless ``serve --insecure``) ``WRITE``
answers 403 and every other level is open, with redacted identification answers.
The key travels in ``X-API-Key: KEY`` or ``Authorization: Bearer KEY``; it is printable ASCII
(checked at start-up) and compared in constant time on the raw header bytes.
"""

import enum
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

__all__ = ["Access", "Caller", "guard", "redact"]


class Access(enum.Enum):
    """What a route does with voiceprints (see the module docstring for the rule)."""

    PUBLIC = "public"
    IDENTIFY = "identify"
    VOICEPRINTS = "voiceprints"
    WRITE = "write"


@dataclass(frozen=True)
class Caller:
    """The caller of a request: ``has_key`` when it presented the configured API key."""

    has_key: bool


def _matches(given: str | None, key: str) -> bool:
    if not given:
        return False
    # starlette decodes headers as latin-1: compare the raw bytes with the ASCII key
    return hmac.compare_digest(given.encode("latin-1", "replace"), key.encode("ascii"))


def decide(
    access: Access, key: str | None, public_identify: bool, given: tuple[str | None, ...]
) -> Caller:
    """Apply the access rule; raise 401/403 ``HTTPException`` or return the caller.

    Example:
        >>> decide(Access.IDENTIFY, None, False, (None,))
        Caller(has_key=False)
    """
    from fastapi import HTTPException  # the service extra; this module imports without it

    has_key = key is not None and any(_matches(g, key) for g in given)
    if access is Access.PUBLIC or has_key:
        return Caller(has_key)
    if key is None:
        if access is Access.WRITE:
            raise HTTPException(403, "this server has no API key configured (SPEAKERRPL_API_KEY)")
        return Caller(False)
    if access is Access.IDENTIFY and public_identify:
        return Caller(False)
    raise HTTPException(401, "missing or wrong API key", {"WWW-Authenticate": "Bearer"})


def guard(access: Access) -> Callable[..., Caller]:
    """A FastAPI dependency enforcing ``access`` (use as ``Depends(guard(Access.X))``).

    Its two security parameters put the ``ApiKey`` (``X-API-Key``) and ``Bearer`` schemes into
    the OpenAPI schema of every route that uses it.
    """
    from fastapi import Request, Security
    from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

    key_header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey",
                              description="the server's API key")  # fmt: skip
    bearer_scheme = HTTPBearer(auto_error=False, scheme_name="Bearer", description="the API key")

    def dependency(
        request: Request,
        api_key: Annotated[str | None, Security(key_header)] = None,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)] = None,
    ) -> Caller:
        settings = request.app.state.engine.settings
        token = bearer.credentials if bearer is not None else None
        return decide(access, settings.api_key, settings.public_identify, (api_key, token))

    dependency.__name__ = f"require_{access.value}"
    return dependency


def redact(result: Mapping[str, Any], caller: Caller) -> dict[str, Any]:
    """What a caller without the key may see of one identification result.

    Only the decision: the accepted speaker and its score, or ``<unknown>`` alone, so a
    rejected clip reveals nobody's name or closeness (no probing oracle).

    Example:
        >>> r = {"speaker": "<unknown>", "best_match": "bob", "score": 0.2, "scores": {"bob": 0.2},
        ...      "threshold": 0.5, "model_version": 3}
        >>> redact(r, Caller(False))
        {'speaker': '<unknown>', 'model_version': 3}
    """
    if caller.has_key:
        return dict(result)
    out: dict[str, Any] = {"speaker": result["speaker"]}
    if result["speaker"] == result.get("best_match"):  # accepted
        out["score"] = result["score"]
    out["model_version"] = result["model_version"]
    if "file" in result:
        out["file"] = result["file"]
    return out
