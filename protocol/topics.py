"""Topic layout: `balise/v1/<unit>/<kind>`.

Units publish the uplink kinds under their own id and read only their `cmd`
topic; the broker's ACL enforces it. Imports only protocol.errors.
"""

from protocol.errors import BadTopic, BadValue, UnknownKind

ROOT = "balise"
MAJOR_VERSION = 1
PREFIX = "%s/v%d/" % (ROOT, MAJOR_VERSION)

UPLINK_KINDS = ("pos", "batch", "status", "sos", "health", "online")
DOWNLINK_KINDS = ("cmd",)
KINDS = UPLINK_KINDS + DOWNLINK_KINDS

UNIT_ID_MAX_CHARS = 32
# MicroPython's `re` has no counted repetition, so unit ids are checked by hand.
_UNIT_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def is_unit_id(text):
    """True if `text` is a valid unit id: 1 to 32 of A-Z a-z 0-9 _ -."""
    if type(text) is not str or not 0 < len(text) <= UNIT_ID_MAX_CHARS:
        return False
    return _UNIT_ID_CHARS.issuperset(text)


def check_unit_id(text):
    """Return `text` if it is a valid unit id, else raise BadValue naming it."""
    if not is_unit_id(text):
        raise BadValue("bad unit id %r: use 1-32 of A-Z a-z 0-9 _ -" % (text,), "u")
    return text


def topic(unit, kind):
    """The topic a message of `kind` about `unit` travels on."""
    check_unit_id(unit)
    if kind not in KINDS:
        raise UnknownKind("unknown kind %r" % (kind,))
    return PREFIX + unit + "/" + kind


def parse(name):
    """Split a topic into (unit, kind); raise BadTopic or UnknownKind."""
    if type(name) is not str or not name.startswith(PREFIX):
        raise BadTopic("topic %r is not under %s" % (name, PREFIX))
    parts = name[len(PREFIX) :].split("/")
    if len(parts) != 2:
        raise BadTopic("topic %r is not %s<unit>/<kind>" % (name, PREFIX))
    unit, kind = parts
    if not is_unit_id(unit):
        raise BadTopic("topic %r has a bad unit id %r" % (name, unit))
    if kind not in KINDS:
        raise UnknownKind("topic %r has unknown kind %r" % (name, kind))
    return unit, kind


def is_uplink(kind):
    return kind in UPLINK_KINDS


# Subscriptions: the gateway reads every unit's uplink, a unit its own cmd.
UPLINK_SUBSCRIPTION = PREFIX + "+/+"


def cmd_topic(unit):
    return topic(unit, "cmd")
