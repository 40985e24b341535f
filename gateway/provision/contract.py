"""Names from the unit-gateway contract that provisioning needs: topics, uplink kinds, unit ids.

protocol/ owns them all; this module only adapts them to provisioning's errors.
"""

from __future__ import annotations

from gateway.config import VEHICLE_TYPES
from gateway.errors import ProvisionError
from protocol import topics

TOPIC_ROOT = topics.PREFIX.rstrip("/")
UPLINK_KINDS: tuple[str, ...] = topics.UPLINK_KINDS
# The only downlink topic: gateway -> unit (acknowledgements, assignments).
DOWNLINK_KIND = topics.DOWNLINK_KINDS[0]
UNIT_ID_RULE = "use 1-32 of A-Z a-z 0-9 _ -"

# A dot is not allowed in unit ids, so no unit id can collide with the gateway's user.
GATEWAY_USER = "balise.gateway"


def unit_topic(unit_id: str, kind: str) -> str:
    """The topic of one kind for one unit; `unit_id` may be the single-level wildcard '+'."""
    return f"{TOPIC_ROOT}/{unit_id}/{kind}"


def check_unit_id(unit_id: str) -> str:
    """Return `unit_id` unchanged, or raise ProvisionError naming it."""
    if not topics.is_unit_id(unit_id):
        raise ProvisionError(f"bad unit id {unit_id!r}: {UNIT_ID_RULE}")
    return unit_id


def parse_units(text: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """'KEN-M01:motorcycle,KEN-C01:car,KEN-X1' -> the ids, and the vehicle types given."""
    ids, types = [], {}
    for part in text.split(","):
        unit_id, sep, kind = part.strip().partition(":")
        ids.append(unit_id)
        if sep:
            if kind not in VEHICLE_TYPES:
                kinds = ", ".join(VEHICLE_TYPES)
                raise ProvisionError(f"unit {unit_id}: vehicle type {kind!r} is not one of {kinds}")
            types[unit_id] = kind
    return parse_unit_ids(",".join(ids)), types


def parse_unit_ids(text: str) -> tuple[str, ...]:
    """Parse a comma-separated list such as 'KEN-M01,KEN-C01' (spaces around commas are fine)."""
    if not text.strip():
        raise ProvisionError("no unit ids given: --units KEN-M01,KEN-C01,...")
    unit_ids = tuple(check_unit_id(part.strip()) for part in text.split(","))
    seen: set[str] = set()
    for unit_id in unit_ids:
        if unit_id in seen:
            raise ProvisionError(f"unit id {unit_id!r} is given twice in --units")
        seen.add(unit_id)
    return unit_ids
