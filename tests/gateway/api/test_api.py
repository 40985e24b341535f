"""The HTTP API of a real `balise gateway` process, fed by units on the real mosquitto."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from gateway.api import live
from protocol import codec, status, topics
from protocol.messages import Online, Position, Sos, StatusChange
from tests.conftest import start_broker
from tests.gateway_helpers import (
    Api,
    GatewayProcess,
    add_user,
    balise,
    create_token,
    gateway,
    wait_until,
)
from tests.mqtt_helpers import Broker, Session, connected

pytestmark = pytest.mark.broker

MOTO, CAR = "KEN-M01", "KEN-C01"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Room:
    broker: Broker
    gw: GatewayProcess
    admin: Api
    moto: Session
    seq: int = 100

    def publish(self, message: Any, raw: bytes | None = None, kind: str | None = None) -> None:
        topic = topics.topic(MOTO, kind or message.KIND)
        self.moto.publish(topic, raw if raw is not None else codec.encode(message))

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def position(self, lat: float, lon: float, t_ms: int | None = None, **extra: Any) -> Position:
        return Position(
            unit=MOTO, seq=self.next_seq(), t_ms=t_ms or now_ms(), lat=lat, lon=lon, fix=3, **extra
        )

    def login(self, user: str, role: str) -> Api:
        add_user(self.gw.config, user, role)
        api = Api(self.gw.url)
        assert api.login(user).status_code == 200
        return api


@pytest.fixture
def room(broker: Broker, tmp_path: Path) -> Iterator[Room]:
    config = broker.deployment.directory / "gateway.toml"
    with config.open("a") as extra:
        extra.write(f'\n[fleet]\n"{MOTO}" = "motorcycle"\n"{CAR}" = "car"\n')
    add_user(config, "amina", "admin")
    password = broker.deployment.unit_password(MOTO)
    cmd = [topics.cmd_topic(MOTO)]
    with (
        gateway(broker, tmp_path / "gateway.sqlite") as gw,
        connected(broker, MOTO, password, client_id=MOTO, subscribe=cmd) as moto,
    ):
        admin = Api(gw.url)
        assert admin.login("amina").status_code == 200
        yield Room(broker, gw, admin, moto)
        admin.close()


def commands(session: Session, name: str) -> list[Any]:
    decoded = [codec.decode(topic, payload) for topic, payload in list(session.received)]
    return [c for c in decoded if name == c.COMMAND]


def metric(api: Api, name: str) -> float:
    """The value of an unlabelled metric in /metrics; fails if it is not there."""
    for line in api.get("/metrics").text.splitlines():
        if line.split(" ")[0] == name:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_the_deployments_units_are_listed_with_their_type_before_they_report(room: Room) -> None:
    units = room.admin.units()
    assert {units[MOTO]["type"], units[CAR]["type"]} == {"motorcycle", "car"}
    assert units[CAR]["position"] is None and units[CAR]["online"] is False


def test_a_units_position_and_status_reach_the_api(room: Room) -> None:
    room.publish(room.position(34.2610, -6.5802, speed_mps=8.0, heading_deg=90.0))
    change = StatusChange(unit=MOTO, seq=room.next_seq(), t_ms=now_ms(), status=status.AVAILABLE)
    room.publish(change)
    # Two lanes (docs/gateway.md): the status may be shown before the position sent first.
    unit = wait_until(
        lambda: (u := room.admin.units()[MOTO])["status"] == "available" and u["position"] and u,
        what="the status and the position",
    )
    assert unit["position"]["lat"] == 34.2610 and unit["position"]["speed_mps"] == 8.0
    assert unit["stale"] is False and unit["status_since"] == change.t_ms
    assert unit["position"]["predicted"]["lon"] > -6.5802  # moving east: drawn ahead


def test_duplicates_are_stored_once_and_a_late_backfill_does_not_move_the_unit(room: Room) -> None:
    t = now_ms()
    newest = room.position(34.2700, -6.5700, t_ms=t)
    room.publish(newest)
    room.publish(newest)  # the unit missed the PUBACK and sent it again
    late = room.position(34.2500, -6.5900, t_ms=t - 60_000)  # a backlog arriving afterwards
    room.publish(late)
    track = wait_until(
        lambda: (
            (r := room.admin.get(f"/api/units/{MOTO}/track", since=t - 120_000)).json()["features"][
                0
            ]["properties"]["count"]
            == 2
            and r.json()
        ),
        what="both positions in history",
    )
    line = track["features"][0]["geometry"]["coordinates"]
    assert line == [[-6.59, 34.25], [-6.57, 34.27]]  # in time order, each once
    assert room.admin.units()[MOTO]["position"]["lat"] == 34.2700  # not moved back
    assert metric(room.admin, "balise_records_duplicate_total") == 1


def test_a_malformed_or_spoofed_payload_is_counted_and_the_next_good_one_flows(room: Room) -> None:
    room.publish(None, raw=b"{not json", kind="pos")
    # Another unit's id on our topic: encoders leave `u` out since 1.1, but a payload that
    # has one must match the topic.
    spoofed = b'{"v":1,"u":"%s","q":5,"t":%d,"la":1,"lo":1,"fx":3}' % (CAR.encode(), now_ms())
    room.publish(None, raw=spoofed, kind="pos")
    room.publish(room.position(34.2611, -6.5803))
    wait_until(lambda: room.admin.units()[MOTO]["position"], what="the good position")
    text = room.admin.get("/metrics").text
    assert 'balise_messages_rejected_total{reason="bad_json"} 1.0' in text
    assert 'balise_messages_rejected_total{reason="unit_mismatch"} 1.0' in text
    assert room.admin.units()[CAR]["position"] is None


def test_an_sos_acknowledged_through_the_api_reaches_the_unit_and_the_audit_log(room: Room) -> None:
    seq = room.next_seq()
    room.publish(
        Sos(unit=MOTO, seq=seq, t_ms=now_ms(), action="raise", alarm_id=seq, lat=34.26, lon=-6.58)
    )
    alarms = wait_until(lambda: room.admin.get("/api/alarms").json(), what="the alarm")
    assert alarms[0]["unit"] == MOTO and alarms[0]["acknowledged_by"] is None
    wait_until(lambda: commands(room.moto, "ack"), what="the gateway's ack of the stored SOS")

    dispatcher = room.login("youssef", "dispatcher")
    response = dispatcher.post(f"/api/units/{MOTO}/sos/{seq}/ack")
    assert response.status_code == 200, response.text
    assert response.json()["acknowledged_by"] == "youssef"
    sos_ack = wait_until(lambda: commands(room.moto, "sos_ack"), what="the SosAck on cmd")
    assert (sos_ack[0].alarm_id, sos_ack[0].by) == (seq, "youssef")

    again = dispatcher.post(f"/api/units/{MOTO}/sos/{seq}/ack")
    assert again.status_code == 200 and again.json()["acknowledged_by"] == "youssef"
    time.sleep(0.5)
    assert len(commands(room.moto, "sos_ack")) == 1  # idempotent: no second command
    entries = room.admin.get("/api/audit").json()
    assert [e for e in entries if e["action"] == "sos_ack"] == [
        {**entries[0], "actor": "youssef", "action": "sos_ack", "target": MOTO}
    ]
    assert dispatcher.post(f"/api/units/{MOTO}/sos/{seq + 1}/ack").status_code == 404


def test_an_assignment_is_sent_pending_then_accepted_when_the_unit_goes_en_route(
    room: Room,
) -> None:
    room.publish(
        StatusChange(unit=MOTO, seq=room.next_seq(), t_ms=now_ms(), status=status.AVAILABLE)
    )
    hello = Online(unit=MOTO, seq=room.next_seq(), t_ms=now_ms(), online=True)
    room.moto.publish(topics.topic(MOTO, "online"), codec.encode(hello))
    room.publish(room.position(34.2650, -6.5750))
    wait_until(lambda: room.admin.units()[MOTO]["online"], what="the unit online")
    # The gauges count what /api/units shows: both units known, the motorcycle online and
    # reporting, the car never heard from (stale since the gateway started).
    assert metric(room.admin, "balise_units") == 2
    assert metric(room.admin, "balise_units_online") == 1
    assert metric(room.admin, "balise_units_stale") == 1
    # The garbage collector: start-up frozen (gateway/pauses.py), every pause counted.
    assert metric(room.admin, "balise_gc_frozen_objects") > 10_000
    text = room.admin.get("/metrics").text
    assert 'balise_gc_pause_seconds_count{generation="0"}' in text
    assert 'balise_gc_longest_pause_seconds{generation="2"}' in text
    created = room.admin.post("/api/incidents", {"lat": 34.2610, "lon": -6.5802, "title": "Crash"})
    assert created.status_code == 201, created.text
    incident = created.json()
    ranking = room.admin.get(f"/api/incidents/{incident['id']}/nearest").json()
    assert [r["unit"] for r in ranking] == [MOTO] and 600 < ranking[0]["distance_m"] < 800
    assert ranking[0]["eta_s"] > 0

    sent = room.admin.post(f"/api/incidents/{incident['id']}/assign", {"unit": MOTO})
    assert sent.status_code == 202 and sent.json()["state"] == "pending"
    command = wait_until(lambda: commands(room.moto, "assign"), what="the assignment on cmd")[0]
    assert command.incident == str(incident["id"]) and command.text == "Crash"
    assert room.admin.units()[MOTO]["assignment"]["state"] == "pending"

    accept = StatusChange(
        unit=MOTO,
        seq=room.next_seq(),
        t_ms=now_ms(),
        status=status.EN_ROUTE,
        incident=command.incident,
    )
    room.publish(accept)
    unit = wait_until(
        lambda: (u := room.admin.units()[MOTO])["assignment"]["state"] == "accepted" and u,
        what="the acceptance",
    )
    assert unit["status"] == "en_route" and unit["incident"] == str(incident["id"])
    assert room.admin.get("/api/incidents").json()[0]["assigned"] == [MOTO]


def test_logins_roles_and_csrf_are_enforced_and_audited(room: Room) -> None:
    anonymous = Api(room.gw.url)
    for path in ("/api/units", f"/api/units/{MOTO}/track", "/api/alarms", "/api/audit"):
        assert anonymous.get(path).status_code == 401, path
    assert anonymous.post("/api/incidents", {"lat": 1, "lon": 1, "title": "x"}).status_code == 401
    assert anonymous.login("amina", "wrong password").status_code == 401
    assert anonymous.login("nobody", "whatever1").status_code == 401

    viewer = room.login("karim", "viewer")
    assert viewer.get("/api/units").status_code == 200
    refused = viewer.post("/api/incidents", {"lat": 34.0, "lon": -6.0, "title": "Fire"})
    assert refused.status_code == 403 and "needs a dispatcher" in refused.text
    assert viewer.post(f"/api/units/{MOTO}/sos/1/ack").status_code == 403
    assert viewer.get("/api/audit").status_code == 403

    dispatcher = room.login("youssef", "dispatcher")
    no_csrf = dispatcher.post(
        "/api/incidents", {"lat": 34.0, "lon": -6.0, "title": "F"}, csrf=False
    )
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
    assert (
        dispatcher.post("/api/incidents", {"lat": 34.0, "lon": -6.0, "title": "F"}).status_code
        == 201
    )

    token = create_token(room.gw.config, "cad-bridge", "dispatcher")
    machine = Api(room.gw.url, token=token)
    assert (
        machine.post("/api/incidents", {"lat": 34.1, "lon": -6.1, "title": "G"}).status_code == 201
    )
    assert Api(room.gw.url, token=token + "x").get("/api/units").status_code == 401

    log = room.admin.get("/api/audit", limit=50).json()
    actions = [(e["actor"], e["action"]) for e in log]
    assert ("amina", "login_failed") in actions and ("nobody", "login_failed") in actions
    assert ("youssef", "login") in actions and ("karim", "login") in actions
    assert ("youssef", "incident_create") in actions and (
        "cad-bridge",
        "incident_create",
    ) in actions
    assert all(e["t"] > 0 for e in log)


def test_bad_requests_get_clear_errors(room: Room) -> None:
    api = room.admin
    assert api.get("/api/units/KEN-X99").status_code == 404
    reversed_range = api.get(f"/api/units/{MOTO}/track", since=2000, until=1000)
    assert reversed_range.status_code == 422 and "after until" in reversed_range.text
    assert api.get(f"/api/units/{MOTO}/track", since="yesterday").status_code == 422
    bad_place = api.post("/api/incidents", {"lat": 95, "lon": 0, "title": "x"})
    assert bad_place.status_code == 422 and "lat" in bad_place.text
    raw = api.http.post(
        "/api/incidents",
        content=b"{oops",
        headers={"X-CSRF-Token": api.csrf, "Content-Type": "application/json"},
    )
    assert raw.status_code == 422 and "JSON" in raw.text
    # Half a surrogate pair, alone: valid JSON, but no UTF-8 text. pydantic refuses it; the
    # 422 used to echo the input back and could not be encoded: a 500. (Nor is a password
    # echoed in an error now.)
    lone = api.http.post(
        "/api/incidents",
        content=b'{"lat": 34.0, "lon": -6.0, "title": "Crash \\ud800"}',
        headers={"X-CSRF-Token": api.csrf, "Content-Type": "application/json"},
    )
    assert lone.status_code == 422 and '"title"' in lone.text and "unicode" in lone.text
    secret = "correct-horse-" * 100  # over the 1024 characters a password may have
    too_long = api.post("/api/login", {"username": "amina", "password": secret})
    assert too_long.status_code == 422 and "password" in too_long.text
    assert "correct-horse" not in too_long.text
    assert api.post("/api/incidents/999/assign", {"unit": MOTO}).status_code == 404
    incident = api.post("/api/incidents", {"lat": 34.0, "lon": -6.0, "title": "x"}).json()
    assert (
        api.post(f"/api/incidents/{incident['id']}/assign", {"unit": "KEN-X99"}).status_code == 404
    )


def test_the_live_feed_sends_a_snapshot_then_coalesced_deltas(room: Room) -> None:
    cookie = room.admin.http.cookies.get("balise_session")
    url = room.gw.url.replace("http", "ws") + "/api/live"
    with pytest.raises(Exception, match="HTTP 403"), ws_connect(url) as anonymous:
        anonymous.recv(timeout=5)  # refused before the upgrade
    with ws_connect(url, additional_headers={"Cookie": f"balise_session={cookie}"}) as feed:
        snapshot = json.loads(feed.recv(timeout=5))
        assert snapshot["type"] == "snapshot" and {u["id"] for u in snapshot["units"]} == {
            MOTO,
            CAR,
        }
        t = now_ms()
        burst = [room.position(34.26 + i * 1e-4, -6.58, t_ms=t + i) for i in range(50)]
        for position in burst:
            room.moto.client.publish(topics.topic(MOTO, "pos"), codec.encode(position), qos=1)
        frames: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            frame = json.loads(feed.recv(timeout=5))
            frames.append(frame)
            units = [u for u in frame.get("units", []) if u["id"] == MOTO]
            if units and units[0]["position"]["lat"] == burst[-1].lat:
                break
        deltas = [f for f in frames if f["type"] == "delta"]
        assert deltas and deltas[-1]["units"][0]["position"]["lat"] == burst[-1].lat
        assert len(deltas) < len(burst)  # coalesced, not one frame per message
        assert all(len(d["units"]) == 1 for d in deltas)  # only the unit that changed


def test_a_status_and_an_sos_acknowledgement_come_in_alarm_frames_of_their_own(
    room: Room,
) -> None:
    cookie = room.admin.http.cookies.get("balise_session")
    url = room.gw.url.replace("http", "ws") + "/api/live"

    def until(feed: Any, found: Any) -> dict[str, Any]:
        while True:
            frame = json.loads(feed.recv(timeout=10))
            if found(frame):
                return frame

    def shows(frame: dict[str, Any], key: str, value: Any) -> bool:
        return any(u["id"] == MOTO and u[key] == value for u in frame.get("units", []))

    def moved(view: dict[str, Any]) -> bool:
        return view["id"] == MOTO and (view["position"] or {}).get("lat") == 34.27

    with ws_connect(url, additional_headers={"Cookie": f"balise_session={cookie}"}) as feed:
        snapshot = json.loads(feed.recv(timeout=5))
        seq = room.next_seq()
        room.publish(StatusChange(unit=MOTO, seq=seq, t_ms=now_ms(), status=status.ON_SCENE))
        frame = until(feed, lambda f: shows(f, "status", "on_scene"))
        assert frame["type"] == "alarm" and [u["id"] for u in frame["units"]] == [MOTO]
        rev = frame["units"][0]["rev"]
        assert rev > next(u["rev"] for u in snapshot["units"] if u["id"] == MOTO)

        room.publish(room.position(34.27, -6.58))
        frame = until(feed, lambda f: any(moved(u) for u in f.get("units", [])))
        assert frame["type"] == "delta"  # a move waits for the coalesced delta
        assert frame["units"][0]["rev"] > rev

        sos_seq = room.next_seq()
        raised = Sos(unit=MOTO, seq=sos_seq, t_ms=now_ms(), action="raise", alarm_id=sos_seq)
        room.publish(raised)
        frame = until(feed, lambda f: any(u["sos"] for u in f.get("units", [])))
        assert frame["type"] == "alarm"
        response = room.admin.post(f"/api/units/{MOTO}/sos/{sos_seq}/ack")
        assert response.status_code == 200, response.text
        frame = until(
            feed, lambda f: any((u["sos"] or {}).get("acknowledged_by") for u in f["units"])
        )
        assert frame["type"] == "alarm" and frame["units"][0]["sos"]["acknowledged_by"] == "amina"


def test_health_says_503_when_the_broker_is_gone(room: Room) -> None:
    health = room.admin.get("/health")
    assert health.status_code == 200 and health.json()["mqtt"] == "connected"
    room.broker.process.terminate()
    room.broker.process.wait(10)
    down = wait_until(lambda: (r := room.admin.get("/health")).status_code == 503 and r, what="503")
    assert down.json()["mqtt"] == "disconnected" and down.json()["store"] == "ok"
    # The broker comes back: the gateway reconnects by itself and is healthy again.
    log = room.broker.log_path.with_name("mosquitto-again.log")
    room.broker.process = start_broker(room.broker.deployment, log).process
    wait_until(lambda: room.admin.get("/health").status_code == 200, what="healthy again")


def test_the_openapi_document_lists_the_routes(room: Room) -> None:
    paths = room.admin.get("/openapi.json").json()["paths"]
    for path in (
        "/api/units",
        "/api/units/{unit_id}/track",
        "/api/alarms",
        "/api/incidents",
        "/api/incidents/{incident_id}/assign",
        "/api/audit",
        "/health",
        "/metrics",
    ):
        assert path in paths, path


def test_users_and_tokens_commands_refuse_bad_input(broker: Broker) -> None:
    config = str(broker.deployment.directory / "gateway.toml")
    bad_role = balise("users", "add", "x", "--role", "chief", "--config", config, stdin="p" * 10)
    assert bad_role.returncode == 2 and "invalid choice: 'chief'" in bad_role.stderr
    short = balise("users", "add", "x", "--role", "viewer", "--config", config, stdin="short")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    missing = balise("tokens", "create", "x", "--role", "viewer", "--config", "/nonexistent.toml")
    assert missing.returncode == 2 and "/nonexistent.toml" in missing.stderr


def test_a_quiet_feed_gets_pings_and_sigterm_stops_the_gateway_with_a_client_connected(
    room: Room,
) -> None:
    cookie = room.admin.http.cookies.get("balise_session")
    url = room.gw.url.replace("http", "ws") + "/api/live"
    with ws_connect(url, additional_headers={"Cookie": f"balise_session={cookie}"}) as feed:
        assert json.loads(feed.recv(timeout=5))["type"] == "snapshot"
        frame = json.loads(feed.recv(timeout=live.PING_SECONDS + 5))
        assert frame["type"] == "ping" and frame["t"] > 0
        assert room.gw.stop() == 0, room.gw.log()
        with pytest.raises(ConnectionClosed):
            while True:  # whatever was in flight, then the close
                feed.recv(timeout=5)


def test_a_client_that_does_not_drain_its_frames_is_dropped_not_waited_for() -> None:
    client = live.Client()
    for i in range(live.CLIENT_QUEUE_FRAMES):
        client.offer(f"frame {i}")
    assert not client.dropped
    client.offer("one too many")
    assert client.dropped
    assert asyncio.run(client.next_frame(1)) is None  # the sender's signal to close the socket


def test_an_alarm_frame_goes_out_before_the_deltas_queued_for_a_client() -> None:
    client = live.Client()
    for i in range(3):
        client.offer(f"delta {i}")
    client.offer("alarm 0", alarm=True)
    client.offer("alarm 1", alarm=True)

    async def drain() -> list[str | None]:
        return [await client.next_frame(1) for _ in range(5)]

    assert asyncio.run(drain()) == ["alarm 0", "alarm 1", "delta 0", "delta 1", "delta 2"]
