"""The routes of docs/api.md. Handlers are plain functions (FastAPI runs them on
its thread pool): the live state and the databases are guarded by their own locks."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request, Response, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gateway.api import metrics
from gateway.api.auth import SESSION_COOKIE, principal, require
from gateway.api.context import ApiContext
from gateway.api.live import INCIDENT_PREFIX, Hub
from gateway.room import SESSION_SECONDS, Principal
from gateway.state import Assignment
from protocol import predictor, status
from protocol.messages import Assignment as AssignmentCommand
from protocol.messages import SosAck

TRACK_DEFAULT_MS = 30 * 60 * 1000
TRACK_MAX_MS = 7 * 86_400_000
STREET_FACTOR = 1.3  # streets are longer than the straight line
CITY_SPEED_MPS = {"motorcycle": 10.0, "car": 8.0, "unknown": 8.0}

Viewer = Annotated[Principal, Depends(require("viewer"))]
Dispatcher = Annotated[Principal, Depends(require("dispatcher"))]
Admin = Annotated[Principal, Depends(require("admin"))]


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class NewIncident(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    title: str = Field(min_length=1, max_length=120)
    note: str = Field(default="", max_length=1000)


class AssignBody(BaseModel):
    unit: str = Field(min_length=1, max_length=32)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each field and what is wrong with it, without echoing the input: a password
    has no place in an error, and text that is not Unicode could not be written back."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {key: value for key, value in error.items() if key in ("type", "loc", "msg")}
        for error in exc.errors()
    ]
    return JSONResponse(status_code=422, content={"detail": errors})


def _now_ms() -> int:
    return int(time.time() * 1000)


def create_app(context: ApiContext) -> FastAPI:
    app = FastAPI(
        title="balise gateway",
        version="1",
        description="Live positions, status and SOS of the mobile units; incidents; audit log.",
    )
    hub = Hub(context)
    app.state.context = context
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.state.hub = hub
    registry = metrics.registry(context, hub)
    state, room = context.state, context.room

    def mark(ids: set[str]) -> None:
        hub.mark(ids)
        context.changed(ids)

    def alarm(unit_ids: set[str]) -> None:
        hub.alarm(unit_ids)
        context.changed(unit_ids)

    def unit_view(unit_id: str) -> dict[str, Any]:
        views = state.views(_now_ms(), [unit_id])
        if not views:
            raise HTTPException(404, f"no unit {unit_id!r}")
        return views[0]

    def incident(incident_id: int) -> dict[str, Any]:
        found = room.incidents(incident_id)
        if not found:
            raise HTTPException(404, f"no incident {incident_id}")
        return found[0]

    # -- sessions ---------------------------------------------------------------

    @app.post("/api/login", tags=["session"])
    def login(body: Login, request: Request, response: Response) -> dict[str, str]:
        result = room.login(body.username, body.password)
        client = request.client.host if request.client else "?"
        if result is None:
            room.audit(body.username, "login_failed", None, f"from {client}")
            raise HTTPException(401, "wrong user name or password")
        who, session = result
        room.audit(who.name, "login", None, f"from {client}")
        response.set_cookie(
            SESSION_COOKIE,
            session,
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return {"user": who.name, "role": who.role, "csrf": who.csrf or ""}

    @app.post("/api/logout", tags=["session"])
    def logout(
        request: Request, response: Response, who: Annotated[Principal, Depends(principal)]
    ) -> dict[str, bool]:
        session = request.cookies.get(SESSION_COOKIE)
        if session:
            room.logout(session)
        room.audit(who.name, "logout")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return {"ok": True}

    @app.get("/api/session", tags=["session"])
    def session(who: Viewer) -> dict[str, str | None]:
        return {"user": who.name, "role": who.role, "csrf": who.csrf}

    @app.get("/api/config", tags=["console"])
    def console_config(who: Viewer) -> dict[str, Any]:
        console = context.config.console
        tiles = (
            {"url": console.tile_url, "attribution": console.attribution}
            if console.tile_url
            else None
        )
        return {
            "tiles": tiles,
            "center": list(console.center),
            "zoom": console.zoom,
            "heartbeat_s": context.config.heartbeat_s,
            "stale_after_s": context.config.heartbeat_s + context.config.grace_s,
        }

    # -- units ------------------------------------------------------------------

    @app.get("/api/units", tags=["units"])
    def units(who: Viewer) -> list[dict[str, Any]]:
        return state.views(_now_ms())

    @app.get("/api/units/{unit_id}", tags=["units"])
    def unit(unit_id: str, who: Viewer) -> dict[str, Any]:
        return unit_view(unit_id)

    @app.get("/api/units/{unit_id}/track", tags=["units"])
    def track(
        unit_id: str,
        who: Viewer,
        since: Annotated[int | None, Query(description="ms since the epoch")] = None,
        until: Annotated[int | None, Query(description="ms since the epoch")] = None,
    ) -> dict[str, Any]:
        unit_view(unit_id)
        until_ms = _now_ms() if until is None else until
        since_ms = until_ms - TRACK_DEFAULT_MS if since is None else since
        if since_ms > until_ms:
            raise HTTPException(422, f"since ({since_ms}) is after until ({until_ms})")
        if until_ms - since_ms > TRACK_MAX_MS:
            raise HTTPException(422, "a track spans at most 7 days; ask for less")
        points = context.store.track(unit_id, since_ms, until_ms)
        features: list[dict[str, Any]] = [
            {
                "type": "Feature",
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[p.lon, p.lat] for p in points],
                },
                "properties": {
                    "unit": unit_id,
                    "since": since_ms,
                    "until": until_ms,
                    "count": len(points),
                },
            }
        ]
        features += [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [p.lon, p.lat]},
                "properties": {
                    "t": p.t_ms,
                    "seq": p.seq,
                    "speed_mps": p.speed_mps,
                    "heading_deg": p.heading_deg,
                    "hdop": p.hdop,
                },
            }
            for p in points
        ]
        return {"type": "FeatureCollection", "features": features}

    # -- alarms -----------------------------------------------------------------

    @app.get("/api/alarms", tags=["alarms"])
    def alarms(who: Viewer) -> list[dict[str, Any]]:
        return [
            {"unit": view["id"], **{k: v for k, v in view["sos"].items() if k != "cancelled"}}
            for view in state.views(_now_ms())
            if view["sos"] is not None and not view["sos"]["cancelled"]
        ]

    @app.post("/api/units/{unit_id}/sos/{alarm_id}/ack", tags=["alarms"])
    def acknowledge_sos(unit_id: str, alarm_id: int, who: Dispatcher) -> dict[str, Any]:
        with state.lock:
            sos = unit_view(unit_id)["sos"]
            if sos is None or sos["alarm_id"] != alarm_id or sos["cancelled"]:
                raise HTTPException(404, f"{unit_id} has no open SOS {alarm_id}")
            first = sos["acknowledged_by"] is None
            now = _now_ms()
            state.acknowledge_sos(unit_id, alarm_id, who.name, now)
        if first:
            context.send_command(
                SosAck(
                    unit=unit_id,
                    cmd_id=context.command_id(),
                    t_ms=now,
                    alarm_id=alarm_id,
                    by=who.name,
                )
            )
            room.audit(who.name, "sos_ack", unit_id, f"alarm {alarm_id}")
            alarm({unit_id})
        acknowledged = unit_view(unit_id)["sos"]
        return {"unit": unit_id, **acknowledged}

    # -- incidents --------------------------------------------------------------

    @app.post("/api/incidents", tags=["incidents"], status_code=201)
    def create_incident(body: NewIncident, who: Dispatcher) -> dict[str, Any]:
        incident_id = room.create_incident(body.lat, body.lon, body.title, body.note, who.name)
        room.audit(
            who.name, "incident_create", str(incident_id), f"{body.title} @ {body.lat},{body.lon}"
        )
        mark({f"{INCIDENT_PREFIX}{incident_id}"})
        return incident(incident_id)

    @app.get("/api/incidents", tags=["incidents"])
    def incidents(who: Viewer) -> list[dict[str, Any]]:
        return room.incidents()

    @app.get("/api/incidents/{incident_id}", tags=["incidents"])
    def get_incident(incident_id: int, who: Viewer) -> dict[str, Any]:
        return incident(incident_id)

    def ranked(lat: float, lon: float, limit: int) -> list[dict[str, Any]]:
        candidates = []
        for view in state.views(_now_ms()):
            position = view["position"]
            if (
                view["status_code"] not in status.DISPATCHABLE
                or not view["online"]
                or view["stale"]
                or position is None
                or (view["sos"] is not None and not view["sos"]["cancelled"])
            ):
                continue
            here = position["predicted"]
            distance = predictor.distance_m(here["lat"], here["lon"], lat, lon)
            speed = CITY_SPEED_MPS.get(view["type"], CITY_SPEED_MPS["unknown"])
            candidates.append(
                {
                    "unit": view["id"],
                    "type": view["type"],
                    "status": view["status"],
                    "distance_m": round(distance),
                    "eta_s": round(distance * STREET_FACTOR / speed),
                }
            )
        candidates.sort(key=lambda c: (c["eta_s"], c["unit"]))
        return candidates[:limit]

    @app.get("/api/incidents/{incident_id}/nearest", tags=["incidents"])
    def nearest_to_incident(
        incident_id: int, who: Viewer, limit: Annotated[int, Query(ge=1, le=100)] = 5
    ) -> list[dict[str, Any]]:
        place = incident(incident_id)
        return ranked(place["lat"], place["lon"], limit)

    @app.get("/api/nearest", tags=["incidents"])
    def nearest(
        who: Viewer,
        lat: Annotated[float, Query(ge=-90, le=90)],
        lon: Annotated[float, Query(ge=-180, le=180)],
        limit: Annotated[int, Query(ge=1, le=100)] = 5,
    ) -> list[dict[str, Any]]:
        return ranked(lat, lon, limit)

    @app.post("/api/incidents/{incident_id}/assign", tags=["incidents"], status_code=202)
    def assign(
        incident_id: int, who: Dispatcher, body: Annotated[AssignBody, Body()]
    ) -> dict[str, Any]:
        place = incident(incident_id)
        unit_view(body.unit)
        cmd_id = context.command_id()
        sent_ms = room.assign(incident_id, body.unit, cmd_id, who.name)
        state.assign(body.unit, Assignment(str(incident_id), cmd_id, sent_ms, who.name))
        context.send_command(
            AssignmentCommand(
                unit=body.unit,
                cmd_id=cmd_id,
                t_ms=sent_ms,
                incident=str(incident_id),
                lat=place["lat"],
                lon=place["lon"],
                text=place["title"][:280],
            )
        )
        room.audit(who.name, "assign", body.unit, f"incident {incident_id}")
        mark({body.unit, f"{INCIDENT_PREFIX}{incident_id}"})
        assignment: dict[str, Any] = unit_view(body.unit)["assignment"]
        return assignment

    # -- audit, live, health, metrics -------------------------------------------

    @app.get("/api/audit", tags=["audit"])
    def audit(
        who: Admin, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
    ) -> list[dict[str, Any]]:
        return room.audit_log(limit)

    @app.websocket("/api/live")
    async def live(websocket: WebSocket) -> None:
        await hub.serve(websocket)

    @app.get("/health", tags=["operations"])
    def health() -> JSONResponse:
        mqtt = "connected" if context.mqtt_connected() else "disconnected"
        try:
            context.store.track("", 0, 0)
            store = "ok"
        except Exception as exc:  # any store failure is what this endpoint reports
            store = f"error: {exc}"
        body = {
            "ok": mqtt == "connected" and store == "ok",
            "mqtt": mqtt,
            "store": store,
            "units": len(state.units),
        }
        return JSONResponse(body, status_code=200 if body["ok"] else 503)

    @app.get("/metrics", tags=["operations"])
    def prometheus() -> Response:
        return Response(metrics.render(registry), media_type="text/plain; version=0.0.4")

    return app
