"""Topic layout and unit ids (portable: also runs under MicroPython)."""

from protocol import topics
from protocol.errors import BadTopic, BadValue, UnknownKind
from tests.protocol.portable import raises

# Also run by tests/mpy_runner.py under the MicroPython Unix port.
MICROPYTHON = True


def test_topic_round_trip():
    for kind in topics.KINDS:
        name = topics.topic("KEN-M01", kind)
        assert name == "balise/v1/KEN-M01/" + kind
        assert topics.parse(name) == ("KEN-M01", kind)


def test_unit_ids():
    for good in ("A", "KEN-M01", "unit_7", "x" * 32):
        assert topics.is_unit_id(good), good
    for bad in ("", "x" * 33, "KEN M01", "KEN/M01", "KEN+", "#", "ken.m01", "é", None, 7):
        assert not topics.is_unit_id(bad), bad
    assert "KEN M01" in str(raises(BadValue, topics.check_unit_id, "KEN M01"))


def test_bad_topics_name_the_problem():
    for name in (
        "other/v1/A/pos",
        "balise/v2/A/pos",
        "balise/v1/A/pos/x",
        "balise/v1/A",
        "balise/v1/A B/pos",
    ):
        error = raises(BadTopic, topics.parse, name)
        assert name in str(error)
    error = raises(UnknownKind, topics.parse, "balise/v1/A/weather")
    assert "weather" in str(error)
    raises(UnknownKind, topics.topic, "A", "weather")
    raises(BadValue, topics.topic, "A B", "pos")
