"""The demo's fallback broker (amqtt) on a real deployment: TLS, the deployment's users, ACL.

The same checks as tests/gateway/provision/test_broker_acl.py makes of mosquitto, on the
subset that matters for the demo: units get in with their own password only, a unit's
publish reaches the gateway, and neither another unit's topic nor a forged `cmd` does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from amqtt.contexts import Action

from simulators import amqtt_rules, demo, embedded_broker, processes
from simulators.errors import SimulatorError
from tests.mqtt_helpers import Broker, Deployment, attempt_connect, connected

pytestmark = pytest.mark.broker
QUIET_S = 1.0  # how long a dropped message is given to show up anyway


@pytest.fixture
def amqtt(deployment: Deployment, tmp_path: Path) -> Iterator[Broker]:
    log_path = tmp_path / "amqtt.log"
    process = processes.BrokerProcess(
        deployment.directory, deployment.host, deployment.port, log_path, embedded=True
    )
    process.start()  # returns once amqtt completes a TLS handshake
    assert process.process is not None
    try:
        yield Broker(deployment, process.process, log_path)
    finally:
        process.stop()


def _log_in(broker: Broker, user: str, password: str) -> str | None:
    return attempt_connect(
        broker.host,
        broker.port,
        client_id=user,
        username=user,
        password=password,
        ca_cert=broker.ca_cert,
    )


def test_units_get_in_with_their_own_password_only(amqtt: Broker) -> None:
    good = amqtt.deployment.unit_password("KEN-M01")
    assert _log_in(amqtt, "KEN-M01", good) is None
    assert _log_in(amqtt, "KEN-C01", good) is not None, "KEN-C01 got in with KEN-M01's password"
    assert _log_in(amqtt, "KEN-M01", "") is not None, "an empty password got in"


def test_a_unit_reaches_the_gateway_on_its_own_topics_only(amqtt: Broker) -> None:
    deployment = amqtt.deployment
    user, password = deployment.gateway_user()
    with (
        connected(amqtt, user, password, client_id="gw", subscribe=["balise/v1/+/+"]) as gw,
        connected(
            amqtt,
            "KEN-M01",
            deployment.unit_password("KEN-M01"),
            client_id="KEN-M01",
            subscribe=["balise/v1/KEN-M01/cmd", "balise/v1/KEN-C01/cmd"],
        ) as unit,
    ):
        unit.publish("balise/v1/KEN-C01/status", b"spoofed")  # another unit's topic
        unit.publish("balise/v1/KEN-M01/cmd", b"forged ack")  # its own cmd: fake acks
        unit.publish("balise/v1/KEN-M01/status", b"own")
        assert gw.wait_for("balise/v1/KEN-M01/status", b"own"), amqtt.log()
        gw.client.publish("balise/v1/KEN-C01/cmd", b"for C01", qos=1).wait_for_publish(5)
        gw.client.publish("balise/v1/KEN-M01/cmd", b"for M01", qos=1).wait_for_publish(5)
        assert unit.wait_for("balise/v1/KEN-M01/cmd", b"for M01"), amqtt.log()
        time.sleep(QUIET_S)
        assert ("balise/v1/KEN-C01/status", b"spoofed") not in gw.received
        assert ("balise/v1/KEN-M01/cmd", b"forged ack") not in unit.received
        assert ("balise/v1/KEN-C01/cmd", b"for C01") not in unit.received
        assert not any(topic.endswith("/cmd") for topic, _ in gw.received), "own cmds echoed"


@pytest.mark.parametrize(
    ("user", "topic", "action", "expected"),
    [
        ("KEN-M01", "balise/v1/KEN-M01/pos", Action.PUBLISH, True),
        ("KEN-M01", "balise/v1/KEN-M01/cmd", Action.PUBLISH, False),
        ("KEN-M01", "balise/v1/KEN-C01/pos", Action.PUBLISH, False),
        ("KEN-M01", "balise/v1/KEN-M01/cmd", Action.SUBSCRIBE, True),
        ("KEN-M01", "balise/v1/+/cmd", Action.SUBSCRIBE, False),
        ("KEN-M01", "balise/v1/#", Action.SUBSCRIBE, False),
        ("KEN-M01", "balise/v1/KEN-M01/pos", Action.RECEIVE, False),
        ("balise.gateway", "balise/v1/+/+", Action.SUBSCRIBE, True),
        ("balise.gateway", "balise/v1/+/sos", Action.SUBSCRIBE, True),
        ("balise.gateway", "#", Action.SUBSCRIBE, False),
        ("balise.gateway", "balise/v1/KEN-M01/sos", Action.RECEIVE, True),
        ("balise.gateway", "balise/v1/KEN-M01/cmd", Action.RECEIVE, False),
        ("balise.gateway", "balise/v1/KEN-M01/cmd", Action.PUBLISH, True),
        ("balise.gateway", "balise/v1/+/cmd", Action.PUBLISH, False),
        ("balise.gateway", "balise/v1/KEN-M01/pos", Action.PUBLISH, False),
        (None, "balise/v1/KEN-M01/pos", Action.PUBLISH, False),
        ("KEN-M01", "elsewhere/KEN-M01/pos", Action.PUBLISH, False),
    ],
)
def test_the_rules_match_the_mosquitto_acl(
    user: str | None, topic: str, action: Action, expected: bool
) -> None:
    assert amqtt_rules.allowed(user, topic, action) is expected


def test_auto_takes_mosquitto_when_installed_and_amqtt_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(processes, "find_mosquitto", lambda: "/usr/sbin/mosquitto")
    assert demo.choose_broker("auto") == "mosquitto"
    assert demo.choose_broker("embedded") == "embedded"
    monkeypatch.setattr(processes, "find_mosquitto", lambda: None)
    assert demo.choose_broker("auto") == "embedded"
    with pytest.raises(SimulatorError, match=r"mosquitto is not installed.*--broker embedded"):
        processes.mosquitto_program()


def test_a_deployment_without_units_is_refused_by_name(deployment: Deployment) -> None:
    for unit in (deployment.directory / "units").glob("*.toml"):
        unit.unlink()
    with pytest.raises(SimulatorError, match="no unit configs"):
        embedded_broker.write_config(deployment.directory)


def test_a_config_without_a_password_is_named(deployment: Deployment) -> None:
    config = deployment.directory / "units" / "KEN-M01.toml"
    config.write_text(config.read_text().replace("password", "pasword"))
    with pytest.raises(SimulatorError, match=r"KEN-M01.toml: \[broker\] needs a username"):
        embedded_broker.write_config(deployment.directory)


def test_the_broker_files_are_private(deployment: Deployment) -> None:
    path = embedded_broker.write_config(deployment.directory)
    assert (path.parent / "passwd").stat().st_mode & 0o077 == 0
    assert path.parent.stat().st_mode & 0o077 == 0
    # the gateway and the two units, each with an argon2 hash (never the password itself)
    assert (path.parent / "passwd").read_text().count(":$argon2id$") == 3
