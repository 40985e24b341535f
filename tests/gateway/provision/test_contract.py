"""Unit ids as --units gives them."""

from __future__ import annotations

import pytest

from gateway.errors import ProvisionError
from gateway.provision.contract import GATEWAY_USER, parse_unit_ids, parse_units
from protocol import topics


def test_parses_a_comma_separated_list_in_order() -> None:
    assert parse_unit_ids("KEN-M01,KEN-C01, ken_c02") == ("KEN-M01", "KEN-C01", "ken_c02")


def test_accepts_32_characters() -> None:
    assert parse_unit_ids("A" * 32) == ("A" * 32,)


@pytest.mark.parametrize(
    ("units", "bad"),
    [
        ("KEN M01", "KEN M01"),
        ("KEN-M01,KEN.M02", "KEN.M02"),
        ("A" * 33, "A" * 33),
        ("KEN-M01,,KEN-C01", ""),
        ("KEN/M01", "KEN/M01"),
        ("KEN+", "KEN+"),
        ("KÉN", "KÉN"),
    ],
)
def test_a_bad_id_is_named(units: str, bad: str) -> None:
    with pytest.raises(ProvisionError) as caught:
        parse_unit_ids(units)
    assert str(caught.value) == f"bad unit id {bad!r}: use 1-32 of A-Z a-z 0-9 _ -"


def test_a_repeated_id_is_an_error() -> None:
    with pytest.raises(ProvisionError, match="'KEN-M01' is given twice"):
        parse_unit_ids("KEN-M01,KEN-C01,KEN-M01")


@pytest.mark.parametrize("units", ["", "  "])
def test_an_empty_list_is_an_error(units: str) -> None:
    with pytest.raises(ProvisionError, match="no unit ids given"):
        parse_unit_ids(units)


def test_the_gateway_user_can_never_be_a_unit_id() -> None:
    assert not topics.is_unit_id(GATEWAY_USER)


def test_units_may_carry_their_vehicle_type() -> None:
    ids, types = parse_units("KEN-M01:motorcycle, KEN-C01:car,KEN-X1")
    assert ids == ("KEN-M01", "KEN-C01", "KEN-X1")
    assert types == {"KEN-M01": "motorcycle", "KEN-C01": "car"}


def test_an_unknown_vehicle_type_is_named() -> None:
    with pytest.raises(ProvisionError, match="unit KEN-M01: vehicle type 'bike' is not one of"):
        parse_units("KEN-M01:bike")
