"""The deployment's topic rules as an amqtt plugin; loaded by the embedded broker only.

mosquitto's ACL file lets a unit write its own uplink topics and read its own `cmd`,
and the gateway read every uplink and write every `cmd`. amqtt's bundled ACL plugin
checks a subscription's filter against the allowed filters as text (so the gateway's
`balise/v1/+/+` would have to be allowed whole) and cannot filter what a subscriber
receives, so the gateway would get its own commands back. This plugin decides each
publish, subscription and delivery from protocol/topics.py instead. It imports amqtt:
only the broker process (simulators/embedded_broker.py) loads it.
"""

from __future__ import annotations

from amqtt.contexts import Action
from amqtt.plugins.base import BaseTopicPlugin
from amqtt.session import Session

from gateway.provision.contract import GATEWAY_USER
from protocol import topics
from protocol.errors import ProtocolError


def _unit_and_kind(topic: str) -> tuple[str, str] | None:
    if topic == topics.UPLINK_SUBSCRIPTION:
        return "+", "+"
    unit, _, kind = topic.removeprefix(topics.PREFIX).partition("/")
    if unit == "+" and topics.is_uplink(kind):
        return unit, kind  # one kind of every unit: the gateway may subscribe so
    try:
        return topics.parse(topic)
    except ProtocolError:
        return None


def allowed(user: str | None, topic: str, action: Action) -> bool:
    """May `user` publish on, subscribe to, or receive from `topic`?"""
    parsed = _unit_and_kind(topic) if topic.startswith(topics.PREFIX) else None
    if user is None or parsed is None:
        return False
    unit, kind = parsed
    if user == GATEWAY_USER:
        if action == Action.PUBLISH:
            return kind == "cmd" and unit != "+"
        return kind == "+" or topics.is_uplink(kind)
    if unit != user:
        return False
    if action == Action.PUBLISH:
        return topics.is_uplink(kind)
    return kind == "cmd"


class BaliseTopicRules(BaseTopicPlugin):
    """amqtt asks it about every PUBLISH, SUBSCRIBE and delivery (RECEIVE)."""

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool:
        if session is None or topic is None or action is None:
            return False
        return allowed(session.username, topic, action)
