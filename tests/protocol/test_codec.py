"""The codec: every kind round-trips; bad payloads fail with a named reason.

Portable: runs under pytest and under the MicroPython Unix port.
"""

from protocol import codec, status
from protocol.codec import decode, encode, topic_of
from protocol.errors import (
    BadJson,
    BadTopic,
    BadValue,
    MissingField,
    Oversized,
    ProtocolError,
    UnitMismatch,
    UnknownKind,
    UnsupportedVersion,
)
from protocol.messages import (
    Ack,
    Assignment,
    Batch,
    ConfigChange,
    Health,
    Online,
    Ping,
    Position,
    Sos,
    SosAck,
    StatusChange,
)
from tests.protocol.portable import raises

# Also run by tests/mpy_runner.py under the MicroPython Unix port.
MICROPYTHON = True

T0 = 1732260000000
UNIT = "KEN-M01"


def position(seq=10, **extra):
    values = {
        "unit": UNIT,
        "seq": seq,
        "t_ms": T0 + seq,
        "lat": 34.26101,
        "lon": -6.58021,
        "fix": 3,
    }
    values.update(extra)
    return Position(**values)


def examples():
    """One message of every kind and command, with most fields set."""
    return [
        position(
            speed_mps=12.5,
            heading_deg=270,
            accel_mps2=-2.5,
            alt_m=12,
            acc_m=4,
            hdop=0.9,
            sats=9,
            reason="heartbeat",
        ),
        Position(unit=UNIT, seq=11, t_ms=T0, fix=1, reason="fix_lost"),
        Batch(
            unit=UNIT,
            items=[
                position(20),
                position(21, clock_time=True),
                Position(unit=UNIT, seq=23, t_ms=T0, fix=1),
            ],
        ),
        StatusChange(
            unit=UNIT, seq=30, t_ms=T0, status=status.EN_ROUTE, incident="INC-1", lat=34.2, lon=-6.5
        ),
        Sos(unit=UNIT, seq=40, t_ms=T0, action="raise", alarm_id=40, lat=34.2, lon=-6.5, acc_m=3),
        Sos(unit=UNIT, seq=45, t_ms=T0, action="cancel", alarm_id=40),
        Health(
            unit=UNIT,
            seq=50,
            t_ms=T0,
            clock_time=True,
            cpu_temp_c=48,
            disk_free_mb=900,
            outbox_depth=3,
            sats=7,
            hdop=1.2,
            uptime_s=3600,
            firmware="0.1.0",
            supply_v=12.4,
        ),
        Online(unit=UNIT, seq=60, t_ms=T0, online=True, firmware="0.1.0"),
        Online(unit=UNIT, seq=61, t_ms=T0, online=False),
        Ack(unit=UNIT, cmd_id=1, t_ms=T0, ranges=[(10, 12), (30, 30)]),
        SosAck(unit=UNIT, cmd_id=2, t_ms=T0, alarm_id=40, by="amina"),
        Assignment(
            unit=UNIT,
            cmd_id=3,
            t_ms=T0,
            incident="INC-1",
            lat=34.25,
            lon=-6.57,
            text="Crash, Avenue Mohammed V",
        ),
        ConfigChange(unit=UNIT, cmd_id=4, t_ms=T0, settings={"threshold_m": 15.0}),
        Ping(unit=UNIT, cmd_id=5, t_ms=T0),
    ]


def test_every_kind_round_trips():
    kinds = set()
    for message in examples():
        decoded = decode(topic_of(message), encode(message))
        assert decoded == message, (decoded, message)
        kinds.add(message.KIND + "/" + getattr(message, "COMMAND", ""))
    assert len(kinds) == 6 + 5


def test_a_typical_position_is_well_under_owntracks_154_bytes():
    # What the firmware sends while driving a 3D fix: no `v`, `u`, `fx` 3 or `r` "mv".
    typical = position(
        speed_mps=12.35, heading_deg=270.5, hdop=0.94, alt_m=12.3, sats=9, reason="moved"
    )
    assert encode(typical) == (
        b'{"q":10,"t":1732260000010,"la":34.26101,"lo":-6.58021,"sp":12.3,"hd":270.5,'
        b'"al":12,"hp":0.9,"sa":9}'
    )
    # With every optional field as long as it gets, still far below the pos limit.
    everything = typical.replace(
        seq=codec.MAX_SAFE_INT, alt_m=1234.5, acc_m=12.5, sats=12, clock_time=True, fix=2
    )
    assert len(encode(everything)) <= 150, encode(everything)


def test_numbers_are_rounded_to_their_precision():
    decoded = decode(topic_of(position()), encode(position(lat=34.26101734, speed_mps=3.14159)))
    assert abs(decoded.lat - 34.26102) < 1e-9
    assert abs(decoded.speed_mps - 3.1) < 1e-9


def test_uplink_payloads_leave_out_what_the_topic_and_the_defaults_say():
    payload = encode(Online(unit=UNIT, seq=60, t_ms=T0, online=True))
    assert payload == b'{"q":60,"t":1732260000000,"on":true}'
    decoded = decode(topic_of(position()), b'{"q":1,"t":1,"la":1,"lo":2}')
    assert (decoded.unit, decoded.fix, decoded.reason) == (UNIT, 3, "moved")
    lost = decode(topic_of(position()), b'{"q":1,"t":1,"fx":1,"r":"fl"}')
    assert (lost.fix, lost.lat, lost.reason) == (1, None, "fix_lost")


def test_payloads_of_units_before_1_1_with_v_and_u_still_decode():
    old = (
        b'{"v":1,"u":"KEN-M01","q":1234,"t":1732260000123,"la":34.261012,"lo":-6.580211,'
        b'"sp":12.35,"hd":270,"al":12.4,"hp":0.94,"fx":3,"sa":9,"r":"mv"}'
    )
    decoded = decode(topic_of(position()), old)
    assert decoded == position(
        seq=1234,
        t_ms=1732260000123,
        lat=34.261012,
        lon=-6.580211,
        speed_mps=12.35,
        heading_deg=270.0,
        alt_m=12.4,
        hdop=0.94,
        sats=9,
        reason="moved",
    )
    # Re-encoded, it is the short form, and means the same at the wire's precision.
    assert b'"u"' not in encode(decoded) and b'"v"' not in encode(decoded)


def test_unknown_extra_fields_are_ignored():
    payload = b'{"v":1,"u":"KEN-M01","q":5,"t":1,"st":1,"future":{"x":[1,2]},"zz":null}'
    assert decode("balise/v1/KEN-M01/status", payload) == StatusChange(
        unit=UNIT, seq=5, t_ms=1, status=1
    )
    unknown_setting = b'{"v":1,"k":"config","c":1,"t":1,"set":{"threshold_m":10,"new_knob":3}}'
    assert decode("balise/v1/KEN-M01/cmd", unknown_setting).settings == {"threshold_m": 10.0}


def check_rejected(error_type, topic, payload, words):
    error = raises(error_type, decode, topic, payload)
    for word in words:
        assert word in str(error), (word, str(error))
    return error


def test_rejections_name_the_reason():
    pos = "balise/v1/KEN-M01/pos"
    check_rejected(BadJson, pos, b"{not json", ["not UTF-8 JSON"])
    check_rejected(BadJson, pos, b"\xff\xfe\x00", ["not UTF-8 JSON"])
    check_rejected(BadJson, pos, b"[1,2]", ["JSON object"])
    check_rejected(BadTopic, "balise/v1/KEN M01/pos", b"{}", ["bad unit id"])
    check_rejected(UnknownKind, "balise/v1/KEN-M01/gossip", b"{}", ["gossip"])
    # Commands still carry `v` (units before 1.1 require it); uplink may leave it out.
    check_rejected(MissingField, "balise/v1/KEN-M01/cmd", b'{"k":"ping","c":1,"t":1}', ["'v'"])
    check_rejected(
        MissingField, pos, b'{"v":1,"u":"KEN-M01","t":1,"la":1,"lo":1,"fx":3}', ["'q'", "seq"]
    )
    check_rejected(
        BadValue,
        pos,
        b'{"v":1,"u":"KEN-M01","q":1,"t":1,"la":91,"lo":1,"fx":3}',
        ["'la'", "-90 to 90", "91"],
    )
    check_rejected(
        BadValue,
        pos,
        b'{"v":1,"u":"KEN-M01","q":1.5,"t":1,"la":1,"lo":1,"fx":3}',
        ["'q'", "integer"],
    )
    check_rejected(
        BadValue,
        pos,
        b'{"v":1,"u":"KEN-M01","q":true,"t":1,"la":1,"lo":1,"fx":3}',
        ["'q'", "integer"],
    )
    check_rejected(
        BadValue,
        pos,
        b'{"v":1,"u":"KEN-M01","q":1,"t":1,"la":1e999,"lo":1,"fx":3}',
        ["'la'", "finite"],
    )
    # An integer with no float (hundreds of digits) is out of range, not an OverflowError
    # that would escape decode and stop the gateway's ingest.
    huge = b"9" * 400
    check_rejected(BadValue, pos, b'{"q":1,"t":1,"la":' + huge + b',"lo":1}', ["'la'", "-90 to 90"])
    check_rejected(
        BadValue, "balise/v1/KEN-M01/health", b'{"q":1,"t":1,"vb":-' + huge + b"}", ["'vb'"]
    )
    # Half a surrogate pair, alone: valid JSON, but no UTF-8 text (the store could not keep it).
    check_rejected(
        BadValue,
        "balise/v1/KEN-M01/status",
        b'{"q":1,"t":1,"st":6,"in":"A\\ud800"}',
        ["'in'", "surrogate"],
    )
    check_rejected(
        BadValue, "balise/v1/KEN-M01/online", b'{"q":1,"t":1,"on":true,"fw":"\\udfff"}', ["'fw'"]
    )
    check_rejected(
        BadValue, pos, b'{"v":"1.0","u":"KEN-M01","q":1,"t":1,"la":1,"lo":1,"fx":3}', ["'v'"]
    )
    check_rejected(UnsupportedVersion, pos, b'{"v":2,"u":"KEN-M01"}', ["version 2"])
    check_rejected(
        UnitMismatch,
        pos,
        b'{"v":1,"u":"KEN-C01","q":1,"t":1,"la":1,"lo":1,"fx":3}',
        ["KEN-C01", "KEN-M01"],
    )
    check_rejected(UnitMismatch, pos, b'{"u":7,"q":1,"t":1,"la":1,"lo":1}', ["7", "KEN-M01"])
    big = b'{"v":1,"u":"KEN-M01","pad":"' + b"x" * 3000 + b'"}'
    check_rejected(Oversized, pos, big, ["3", "2048", "pos"])
    check_rejected(
        UnknownKind, "balise/v1/KEN-M01/cmd", b'{"v":1,"k":"reboot","c":1,"t":1}', ["reboot"]
    )


def test_whole_message_rules():
    pos = "balise/v1/KEN-M01/pos"
    check_rejected(
        MissingField, pos, b'{"v":1,"u":"KEN-M01","q":1,"t":1,"fx":2}', ["needs la and lo"]
    )
    check_rejected(
        BadValue, pos, b'{"v":1,"u":"KEN-M01","q":1,"t":1,"fx":1,"la":1,"lo":1}', ["no-fix"]
    )
    # No `fx` is a 3D fix, which needs its position.
    check_rejected(MissingField, pos, b'{"q":1,"t":1}', ["fx=3", "needs la and lo"])
    check_rejected(
        BadValue,
        "balise/v1/KEN-M01/status",
        b'{"v":1,"u":"KEN-M01","q":1,"t":1,"st":1,"la":1}',
        ["together"],
    )
    check_rejected(
        BadValue,
        "balise/v1/KEN-M01/sos",
        b'{"v":1,"u":"KEN-M01","q":5,"t":1,"a":"r","id":6}',
        ["after"],
    )
    unordered = b'{"v":1,"u":"KEN-M01","ps":[{"q":2,"t":1,"fx":1},{"q":2,"t":1,"fx":1}]}'
    check_rejected(BadValue, "balise/v1/KEN-M01/batch", unordered, ["increasing"])
    check_rejected(
        BadValue,
        "balise/v1/KEN-M01/cmd",
        b'{"v":1,"k":"ack","c":1,"t":1,"r":[[5,4]]}',
        ["first <= last"],
    )


def test_decode_raises_only_protocol_errors_on_odd_input():
    odd = [
        b"",
        b"null",
        b"0",
        b'"x"',
        b"[" * 1500,
        b"{" * 1500,
        b'{"v":1,"u":"KEN-M01","ps":7}',
        bytearray(b"{}"),
        "{}",
        None,
        12,
        b'{"v":1,"u":{"a":1}}',
        b'{"v":1,"u":"KEN-M01","q":1,"t":1,"st":"1"}',
    ]
    for kind in ("pos", "batch", "status", "cmd"):
        for payload in odd:
            raises(ProtocolError, decode, "balise/v1/KEN-M01/" + kind, payload)


def test_encode_refuses_invalid_messages():
    raises(MissingField, encode, Position(unit=UNIT, seq=1, t_ms=1, lat=1.0, lon=1.0))
    raises(BadValue, encode, position(lat=123.0))
    raises(BadValue, encode, position(unit="no spaces"))
    raises(BadValue, encode, StatusChange(unit=UNIT, seq=1, t_ms=1, status=42))
    raises(
        BadValue,
        encode,
        Batch(unit=UNIT, items=[position(i) for i in range(codec.MAX_BATCH_ITEMS + 1)]),
    )


def test_a_full_batch_fits_its_payload_limit():
    items = [
        position(
            i,
            speed_mps=33.33,
            heading_deg=359.9,
            alt_m=1234.5,
            acc_m=99.9,
            hdop=9.99,
            sats=12,
            reason="moved",
        )
        for i in range(1000000, 1000000 + codec.MAX_BATCH_ITEMS)
    ]
    payload = encode(Batch(unit="U" * 32, items=[item.replace(unit="U" * 32) for item in items]))
    assert len(payload) <= codec.MAX_BATCH_PAYLOAD_BYTES
