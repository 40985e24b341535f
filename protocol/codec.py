"""Encode and decode balise messages: compact JSON with short keys.

`decode(topic, payload)` returns a message of protocol.messages or raises a
ProtocolError subclass that names what was wrong; it never raises anything
else, whatever the bytes. `encode(message)` returns the payload and checks it
by decoding it, so everything balise sends, balise also accepts. Unknown extra
fields are ignored (forward compatibility within a major version).

Each message kind is a table of `Field`s (attribute, wire key, type, range);
the tables are the single source the JSON Schema files and docs/protocol.md
are checked against. Runs on MicroPython: no dataclasses, no typing.
"""

import json
import math

from protocol import status, topics
from protocol.errors import (
    BadJson,
    BadValue,
    MissingField,
    Oversized,
    UnitMismatch,
    UnknownKind,
    UnsupportedVersion,
)
from protocol.messages import (
    FIX_3D,
    FIX_NONE,
    SOS_CANCEL,
    SOS_RAISE,
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

# The major version on the wire; minor revisions only add optional fields,
# which older readers ignore, so they need no number of their own.
VERSION = topics.MAJOR_VERSION
MAX_PAYLOAD_BYTES = 2048
MAX_BATCH_PAYLOAD_BYTES = 32768
MAX_BATCH_ITEMS = 200
MAX_ACK_RANGES = 64
# The largest integer every consumer (JavaScript consoles included) keeps exact.
MAX_SAFE_INT = 2**53 - 1

# The settings a ConfigChange may carry, with their allowed ranges. A unit
# ignores keys it does not know, so new settings can be added in a minor version.
CONFIG_RANGES = {
    "threshold_m": (1, 10000),
    "heartbeat_moving_s": (5, 3600),
    "heartbeat_parked_s": (5, 86400),
    "min_interval_s": (0, 3600),
    "sos_repeat_s": (1, 600),
}


def _show(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Field:
    """One field of a message: attribute name, wire key, type and limits."""

    def __init__(
        self,
        attr,
        key,
        kind,
        required=False,
        lo=None,
        hi=None,
        decimals=None,
        table=None,
        default=None,
    ):
        self.attr = attr
        self.key = key
        self.kind = kind
        self.required = required
        self.lo = lo
        self.hi = hi
        self.decimals = decimals
        self.table = table  # enum: attribute value -> wire value
        # The value an absent key means: encoders leave it out, decoders put it back.
        self.default = default
        # Looked up once: decoding is the gateway's per-message work (docs/benchmarks.md).
        self.reader = _READERS[kind]

    def on_wire_required(self):
        """The key must be in every payload (required, and no default stands in for it)."""
        return self.required and self.default is None

    def fail(self, problem, value):
        raise BadValue(
            "field %r (%s) %s, got %s" % (self.key, self.attr, problem, _show(value)), self.key
        )

    def check_range(self, value):
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            self.fail("must be from %s to %s" % (self.lo, self.hi), value)
        return value

    def read(self, value):
        """Wire value -> attribute value, or BadValue."""
        return self.reader(self, value)

    def write(self, value):
        """Attribute value -> JSON text (numbers at the field's precision)."""
        if self.kind == "enum":
            value = self.table.get(value, value)
        elif type(value) is float:
            if value != value or value in (float("inf"), float("-inf")):
                self.fail("must be a finite number", value)
            value = self._within_range_rounded(value)
        return _value_text(value, self.decimals)

    def _within_range_rounded(self, value):
        # Rounding must not carry a value over its limit (99.99 at 1 decimal is 100.0):
        # such a value is written as the nearest one at this precision inside the range.
        if self.decimals is None:
            return value
        step = 10**-self.decimals
        if self.hi is not None and self.hi < round(value, self.decimals) <= self.hi + step:
            return math.floor(self.hi / step) * step
        if self.lo is not None and self.lo - step <= round(value, self.decimals) < self.lo:
            return math.ceil(self.lo / step) * step
        return value


def _read_int(field, value):
    if type(value) is not int:
        field.fail("must be an integer", value)
    return field.check_range(value)


def _read_num(field, value):
    kind = type(value)
    if kind is float:
        # x - x is 0 for every finite x; NaN and the infinities give NaN.
        if value - value != 0:
            field.fail("must be a finite number", value)
    elif kind is int:
        # In range first: an integer of hundreds of digits has no float (OverflowError).
        field.check_range(value)
        return float(value)
    else:
        field.fail("must be a number", value)
    return field.check_range(value)


def _read_str(field, value):
    if type(value) is not str:
        field.fail("must be a string", value)
    if not 0 < len(value) <= field.hi:
        field.fail("must be 1 to %d characters" % field.hi, value)
    for char in value:
        # JSON may escape half of a surrogate pair alone ("\ud800"): no UTF-8 text holds one,
        # so nothing downstream could store or send it (sqlite3 raised on it).
        if 0xD800 <= ord(char) <= 0xDFFF:
            field.fail("must be Unicode text (a lone surrogate is not)", value)
    return value


def _read_bool(field, value):
    if type(value) is not bool:
        field.fail("must be true or false", value)
    return value


def _read_enum(field, value):
    for attr_value, wire_value in field.table.items():
        if value == wire_value and type(value) is type(wire_value):
            return attr_value
    field.fail("must be one of %s" % ", ".join(sorted(field.table.values())), value)


def _read_status(field, value):
    if not status.is_status(value):
        field.fail("must be a status code of the catalogue (1-8)", value)
    return value


def _read_ranges(field, value):
    if type(value) is not list or not 0 < len(value) <= MAX_ACK_RANGES:
        field.fail("must be a list of 1 to %d [first, last] pairs" % MAX_ACK_RANGES, value)
    ranges = []
    for pair in value:
        if type(pair) is not list or len(pair) != 2:
            field.fail("must hold [first, last] pairs", pair)
        first = _read_int(_SEQ_FIELD, pair[0])
        last = _read_int(_SEQ_FIELD, pair[1])
        if first > last:
            field.fail("must have first <= last in each pair", pair)
        ranges.append((first, last))
    return ranges


def _read_settings(field, value):
    if type(value) is not dict:
        field.fail("must be an object of settings", value)
    settings = {}
    for key, (lo, hi) in CONFIG_RANGES.items():
        if key in value:
            setting = Field(key, key, "num", lo=lo, hi=hi)
            settings[key] = setting.read(value[key])
    return settings


def _read_items(field, value):
    if type(value) is not list or not 0 < len(value) <= MAX_BATCH_ITEMS:
        field.fail("must be a list of 1 to %d positions" % MAX_BATCH_ITEMS, value)
    items = []
    for item in value:
        if type(item) is not dict:
            field.fail("must hold position objects", item)
        position = Position(**_read_fields(POSITION_FIELDS, item))
        _check_position(position)
        items.append(position)
    return items


def _number_text(value, decimals):
    # "%.Nf" rather than repr: MicroPython's float repr shows binary noise
    # (0.9399999999999999), and a fixed precision keeps payloads short.
    text = "%.*f" % (decimals, value)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _value_text(value, decimals):
    """JSON text of a value; objects are written with sorted keys."""
    kind = type(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return _number_text(value, 6 if decimals is None else decimals)
    if kind is str:
        return json.dumps(value)
    if kind is list or kind is tuple:
        return "[" + ",".join([_value_text(item, decimals) for item in value]) + "]"
    if kind is dict:
        pairs = [json.dumps(str(key)) + ":" + _value_text(value[key], 3) for key in sorted(value)]
        return "{" + ",".join(pairs) + "}"
    if isinstance(value, Position):
        return _object_text(_write_fields(POSITION_FIELDS, value))
    raise BadValue("cannot write %s as JSON" % _show(value))


_READERS = {
    "int": _read_int,
    "num": _read_num,
    "str": _read_str,
    "bool": _read_bool,
    "flag": _read_bool,
    "enum": _read_enum,
    "status": _read_status,
    "ranges": _read_ranges,
    "settings": _read_settings,
    "items": _read_items,
}

_SEQ_FIELD = Field("seq", "q", "int", True, 0, MAX_SAFE_INT)

ENVELOPE_FIELDS = (
    _SEQ_FIELD,
    Field("t_ms", "t", "int", True, 0, MAX_SAFE_INT),
    Field("clock_time", "ct", "flag"),
)
# Precision is what the command room can use, not what the receiver gives: 5 decimals of
# a degree is 1.1 m (a receiver's error is metres), 0.1 m/s of speed is 3 m over the
# predictor's 30 s; the unit checks its bound against these rounded values.
LAT = Field("lat", "la", "num", False, -90, 90, 5)
LON = Field("lon", "lo", "num", False, -180, 180, 5)
SPEED = Field("speed_mps", "sp", "num", False, 0, 150, 1)
HEADING = Field("heading_deg", "hd", "num", False, 0, 360, 1)
ACCURACY = Field("acc_m", "ac", "num", False, 0, 100000, 0)
HDOP = Field("hdop", "hp", "num", False, 0, 99.99, 1)
SATS = Field("sats", "sa", "int", False, 0, 255)
FIRMWARE = Field("firmware", "fw", "str", hi=32)

REASON_CODES = {
    "moved": "mv",
    "heartbeat": "hb",
    "status": "st",
    "fix_lost": "fl",
    "fix_regained": "fr",
    "sos": "so",
    "requested": "rq",
}

POSITION_FIELDS = ENVELOPE_FIELDS + (
    LAT,
    LON,
    SPEED,
    HEADING,
    # Along the course, negative when braking (1.1); the predictor draws braking to a stop.
    Field("accel_mps2", "ax", "num", False, -20, 20, 1),
    Field("alt_m", "al", "num", False, -1000, 20000, 0),
    ACCURACY,
    HDOP,
    Field("fix", "fx", "int", True, 1, 3, default=FIX_3D),
    SATS,
    Field("reason", "r", "enum", table=REASON_CODES, default="moved"),
)
BATCH_FIELDS = (Field("items", "ps", "items", True),)
STATUS_FIELDS = ENVELOPE_FIELDS + (
    Field("status", "st", "status", True),
    Field("incident", "in", "str", hi=64),
    LAT,
    LON,
)
SOS_FIELDS = ENVELOPE_FIELDS + (
    Field("action", "a", "enum", True, table={SOS_RAISE: "r", SOS_CANCEL: "c"}),
    Field("alarm_id", "id", "int", True, 0, MAX_SAFE_INT),
    LAT,
    LON,
    ACCURACY,
    SPEED,
    HEADING,
)
HEALTH_FIELDS = ENVELOPE_FIELDS + (
    Field("cpu_temp_c", "tc", "num", False, -60, 150, 0),
    Field("disk_free_mb", "df", "int", False, 0, MAX_SAFE_INT),
    Field("outbox_depth", "ob", "int", False, 0, MAX_SAFE_INT),
    SATS,
    HDOP,
    Field("uptime_s", "up", "int", False, 0, MAX_SAFE_INT),
    FIRMWARE,
    Field("supply_v", "vb", "num", False, 0, 60, 1),
)
ONLINE_FIELDS = ENVELOPE_FIELDS + (Field("online", "on", "bool", True), FIRMWARE)

COMMAND_ENVELOPE = (
    Field("cmd_id", "c", "int", True, 0, MAX_SAFE_INT),
    Field("t_ms", "t", "int", True, 0, MAX_SAFE_INT),
)
ACK_FIELDS = COMMAND_ENVELOPE + (Field("ranges", "r", "ranges", True),)
SOS_ACK_FIELDS = COMMAND_ENVELOPE + (
    Field("alarm_id", "id", "int", True, 0, MAX_SAFE_INT),
    Field("by", "by", "str", True, hi=64),
)
ASSIGNMENT_FIELDS = COMMAND_ENVELOPE + (
    Field("incident", "in", "str", True, hi=64),
    Field("lat", "la", "num", True, -90, 90, 6),
    Field("lon", "lo", "num", True, -180, 180, 6),
    Field("text", "tx", "str", hi=280),
)
CONFIG_FIELDS = COMMAND_ENVELOPE + (Field("settings", "set", "settings", True),)


def _check_lat_lon_pair(message):
    if (message.lat is None) != (message.lon is None):
        raise BadValue("la and lo must come together", "la")


def _check_position(message):
    if message.fix == FIX_NONE:
        if message.lat is not None or message.lon is not None:
            raise BadValue("a no-fix report (fx=1) carries no la/lo", "fx")
    elif message.lat is None or message.lon is None:
        raise MissingField("a fix (fx=%d) needs la and lo" % message.fix, "la")


def _check_sos(message):
    _check_lat_lon_pair(message)
    if message.alarm_id > message.seq:
        raise BadValue(
            "alarm id %d is after the message's seq %d" % (message.alarm_id, message.seq), "id"
        )


def _check_batch(message):
    previous = -1
    for item in message.items:
        if item.seq <= previous:
            raise BadValue("batch items must be in increasing seq order", "ps")
        previous = item.seq


# kind -> (class, fields, whole-message check)
UPLINK = {
    "pos": (Position, POSITION_FIELDS, _check_position),
    "batch": (Batch, BATCH_FIELDS, _check_batch),
    "status": (StatusChange, STATUS_FIELDS, _check_lat_lon_pair),
    "sos": (Sos, SOS_FIELDS, _check_sos),
    "health": (Health, HEALTH_FIELDS, None),
    "online": (Online, ONLINE_FIELDS, None),
}
# command `k` -> (class, fields)
COMMANDS = {
    "ack": (Ack, ACK_FIELDS),
    "sos_ack": (SosAck, SOS_ACK_FIELDS),
    "assign": (Assignment, ASSIGNMENT_FIELDS),
    "config": (ConfigChange, CONFIG_FIELDS),
    "ping": (Ping, COMMAND_ENVELOPE),
}


def max_payload_bytes(kind):
    return MAX_BATCH_PAYLOAD_BYTES if kind == "batch" else MAX_PAYLOAD_BYTES


def _read_fields(fields, obj):
    values = {}
    for field in fields:
        key = field.key
        if key in obj:
            values[field.attr] = field.reader(field, obj[key])
        elif field.default is not None:
            values[field.attr] = field.default
        elif field.required:
            raise MissingField("missing field %r (%s)" % (field.key, field.attr), field.key)
        elif field.kind == "flag":
            values[field.attr] = False
    return values


def _write_fields(fields, message):
    """(key, JSON text) pairs in table order, leaving out absent fields."""
    pairs = []
    for field in fields:
        value = getattr(message, field.attr)
        if value is None or (field.kind == "flag" and not value) or value == field.default:
            continue
        pairs.append((field.key, field.write(value)))
    return pairs


def _object_text(pairs):
    return "{" + ",".join(['"%s":%s' % pair for pair in pairs]) + "}"


def _load(kind, payload):
    if type(payload) is str:
        payload = payload.encode()
    elif type(payload) is not bytes:
        try:
            payload = bytes(payload)
        except (TypeError, ValueError):
            raise BadJson("payload must be bytes, got %s" % type(payload).__name__)
    limit = max_payload_bytes(kind)
    if len(payload) > limit:
        raise Oversized(
            "payload of %d bytes is over the %d allowed for %r" % (len(payload), limit, kind)
        )
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (ValueError, UnicodeError, RuntimeError) as exc:
        # RuntimeError: CPython's RecursionError on deeply nested arrays.
        raise BadJson("payload is not UTF-8 JSON: %s" % _show(str(exc)))
    if type(obj) is not dict:
        raise BadJson("payload must be a JSON object, got %s" % type(obj).__name__)
    return obj


def _check_version(obj, required):
    """`v` is required on commands; on uplink the topic's `v1` says it, so it may be left out."""
    if "v" not in obj:
        if not required:
            return
        raise MissingField("missing field 'v' (version)", "v")
    version = obj["v"]
    if type(version) is not int:
        raise BadValue("field 'v' (version) must be an integer, got %s" % _show(version), "v")
    if version != VERSION:
        raise UnsupportedVersion(
            "version %d is not supported; this code speaks %d" % (version, VERSION), "v"
        )


def _decode_command(unit, obj):
    name = obj.get("k")
    if name is None:
        raise MissingField("missing field 'k' (command)", "k")
    if type(name) is not str or name not in COMMANDS:
        raise UnknownKind("unknown command %s" % _show(name), "k")
    cls, fields = COMMANDS[name]
    message = cls(unit=unit, **_read_fields(fields, obj))
    return message


def _decode_uplink(unit, kind, obj):
    # The topic names the unit; `u` (which units before 1.1 always sent) may repeat it.
    if "u" in obj and obj["u"] != unit:
        raise UnitMismatch(
            "payload names unit %s but the topic names %r" % (_show(obj["u"]), unit), "u"
        )
    cls, fields, check = UPLINK[kind]
    values = _read_fields(fields, obj)
    if kind == "batch":
        for item in values["items"]:
            item.unit = unit
    message = cls(unit=unit, **values)
    if check:
        check(message)
    return message


def decode(topic, payload):
    """Topic and payload bytes -> message; raises only ProtocolError subclasses."""
    unit, kind = topics.parse(topic)
    obj = _load(kind, payload)
    _check_version(obj, kind == "cmd")
    if kind == "cmd":
        return _decode_command(unit, obj)
    return _decode_uplink(unit, kind, obj)


def topic_of(message):
    """The topic a message travels on."""
    return topics.topic(message.unit, message.KIND)


def as_received(message):
    """The message as its receiver decodes it: every number at the wire's precision.

    What the command room draws is the decoded report, so a bound checked against the
    sender's unrounded values can be off by the rounding.
    """
    return decode(topic_of(message), encode(message))


def encode(message):
    """Message -> payload bytes; raises a ProtocolError if the message is not valid.

    Fields are written in table order with fixed precision, so one message
    gives the same bytes on CPython and MicroPython.
    """
    if message.KIND == "cmd":
        pairs = [("v", str(VERSION)), ("k", json.dumps(message.COMMAND))]
        fields = COMMANDS[message.COMMAND][1]
    elif message.KIND in UPLINK:
        # No `v` and `u`: the topic (balise/v1/<unit>/<kind>) already says both.
        pairs = []
        fields = UPLINK[message.KIND][1]
    else:
        raise UnknownKind("cannot encode %s" % _show(message))
    for field in fields:
        if field.required and getattr(message, field.attr) is None:
            raise MissingField("missing field %r (%s)" % (field.key, field.attr), field.key)
    payload = _object_text(pairs + _write_fields(fields, message)).encode()
    decode(topic_of(message), payload)
    return payload
