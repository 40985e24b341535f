"""Errors of the balise protocol.

Every error derives from `ProtocolError`, itself a `ValueError` (MicroPython
cannot give a class two exception bases, so the builtin sits at the root).
`reason` is a short stable code for metrics labels; `str(error)` is the
sentence for people and names what was wrong. Imports nothing.
"""


class ProtocolError(ValueError):
    """A topic or payload that breaks the balise protocol."""

    reason = "protocol_error"

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


class BadTopic(ProtocolError):
    """The topic is not `balise/v1/<unit>/<kind>` with a valid unit id."""

    reason = "bad_topic"


class UnknownKind(ProtocolError):
    """The topic's kind, or a command's `k`, is not one the protocol knows."""

    reason = "unknown_kind"


class BadJson(ProtocolError):
    """The payload is not UTF-8 JSON holding one object."""

    reason = "bad_json"


class Oversized(ProtocolError):
    """The payload is larger than its kind allows."""

    reason = "oversized"


class UnsupportedVersion(ProtocolError):
    """The payload's major version is not one this code speaks."""

    reason = "unsupported_version"


class MissingField(ProtocolError):
    """A required field is absent."""

    reason = "missing_field"


class BadValue(ProtocolError):
    """A field has the wrong type or is out of its range."""

    reason = "bad_value"


class UnitMismatch(ProtocolError):
    """The unit named in the payload is not the unit named in the topic."""

    reason = "unit_mismatch"
