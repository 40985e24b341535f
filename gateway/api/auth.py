"""Who is asking, and may they: sessions with CSRF, bearer tokens, roles.

A browser logs in once and holds an HttpOnly, SameSite=Strict session cookie;
every state-changing request it makes must also carry the session's CSRF token
in `X-CSRF-Token` (double submit: a page on another site can make the browser
send the cookie, never read the token). A machine client sends
`Authorization: Bearer <token>`: no cookie, so no CSRF. No unit data without one.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, WebSocket

from gateway.room import Principal, RoomStore

SESSION_COOKIE = "balise_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _room(connection: Request | WebSocket) -> RoomStore:
    room: RoomStore = connection.app.state.context.room
    return room


def _bearer(connection: Request | WebSocket) -> str | None:
    header = connection.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "Authorization: expected 'Bearer <token>'")
    return token.strip()


def identify(connection: Request | WebSocket) -> Principal | None:
    """The principal behind a bearer token or a session cookie; None if neither is valid."""
    token = _bearer(connection)
    if token is not None:
        return _room(connection).token(token)
    session = connection.cookies.get(SESSION_COOKIE)
    return _room(connection).session(session) if session else None


def principal(request: Request) -> Principal:
    """FastAPI dependency: 401 without a valid login, 403 for a cookie request without CSRF."""
    who = identify(request)
    if who is None:
        raise HTTPException(401, "login required", headers={"WWW-Authenticate": "Bearer"})
    if who.csrf is not None and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not secrets.compare_digest(sent.encode(), who.csrf.encode()):
            raise HTTPException(403, f"missing or wrong CSRF token (header {CSRF_HEADER})")
    return who


def require(role: str) -> Callable[..., Any]:
    """A dependency that lets through `role` and the roles above it."""

    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not who.may(role):
            raise HTTPException(403, f"{who.name} is a {who.role}; this needs a {role}")
        return who

    return check


def websocket_principal(websocket: WebSocket) -> Principal | None:
    """As `principal`, for the live feed: a cookie-borne socket must come from our own origin."""
    try:
        who = identify(websocket)
    except HTTPException:
        return None
    if who is not None and who.csrf is not None:
        origin = websocket.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != websocket.headers.get("host"):
            return None  # another site's page opening a socket with our cookie
    return who
