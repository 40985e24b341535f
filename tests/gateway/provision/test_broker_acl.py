"""A provisioned deployment on the real mosquitto: who may connect, publish and read what.

Each "never arrives" check uses a barrier instead of a sleep: after the forbidden message, the
same publisher sends a permitted marker that the same observer can read, and the observer
waits for it. The broker keeps one publisher's messages in order for each subscriber, so once
the marker is in, the forbidden message would already be there.
"""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from gateway.provision import pki
from gateway.provision.contract import UPLINK_KINDS, unit_topic
from tests.conftest import free_port, provision, running_broker
from tests.mqtt_helpers import WAIT_S, Broker, Session, attempt_connect, connected

pytestmark = pytest.mark.broker

M01, C01 = "KEN-M01", "KEN-C01"


def unit_session(
    broker: Broker, unit_id: str, name: str, subscribe: tuple[str, ...] = ()
) -> AbstractContextManager[Session]:
    password = broker.deployment.unit_password(unit_id)
    return connected(broker, unit_id, password, client_id=f"{unit_id}-{name}", subscribe=subscribe)


def gateway_session(
    broker: Broker, subscribe: tuple[str, ...] = ()
) -> AbstractContextManager[Session]:
    username, password = broker.deployment.gateway_user()
    return connected(broker, username, password, client_id="gateway", subscribe=subscribe)


def test_gateway_receives_every_uplink_kind_of_every_unit(broker: Broker) -> None:
    with gateway_session(broker, ("balise/v1/+/+",)) as gateway:
        for unit_id in (M01, C01):
            with unit_session(broker, unit_id, "uplink") as unit:
                for kind in UPLINK_KINDS:
                    unit.publish(unit_topic(unit_id, kind), f"{kind} from {unit_id}".encode())
        for unit_id in (M01, C01):
            for kind in UPLINK_KINDS:
                payload = f"{kind} from {unit_id}".encode()
                assert gateway.wait_for(unit_topic(unit_id, kind), payload), (unit_id, kind)


def test_unit_cannot_publish_as_another_unit(broker: Broker) -> None:
    marker = (unit_topic(M01, "pos"), b"marker after the spoofs")
    with (
        gateway_session(broker, ("balise/v1/+/+",)) as gateway,
        unit_session(broker, M01, "spoofer") as spoofer,
    ):
        for kind in UPLINK_KINDS:
            spoofer.publish(unit_topic(C01, kind), b"spoofed by KEN-M01")
        spoofer.publish(*marker)
        assert gateway.wait_for(*marker), "the permitted marker never arrived"
        assert not any(topic.startswith(f"balise/v1/{C01}/") for topic in gateway.topics())
        assert gateway.received == [marker]


def test_unit_cannot_read_another_units_cmd(broker: Broker) -> None:
    for_c01 = (unit_topic(C01, "cmd"), b"ack for KEN-C01")
    marker = (unit_topic(M01, "cmd"), b"marker for KEN-M01")
    snooping = (unit_topic(C01, "cmd"), "balise/v1/+/cmd", "balise/v1/#", marker[0])
    with (
        unit_session(broker, M01, "snoop", snooping) as snoop,
        unit_session(broker, C01, "own", (for_c01[0],)) as c01,
        gateway_session(broker) as gateway,
    ):
        gateway.publish(*for_c01)
        gateway.publish(*marker)
        assert c01.wait_for(*for_c01), "KEN-C01 did not get its own cmd (positive control)"
        assert snoop.wait_for(*marker), "KEN-M01 did not get its own cmd (the barrier)"
        assert for_c01[0] not in snoop.topics()


def test_unit_cannot_fake_an_acknowledgement_on_its_own_cmd(broker: Broker) -> None:
    cmd = unit_topic(M01, "cmd")
    with (
        unit_session(broker, M01, "observer", (cmd,)) as observer,
        unit_session(broker, M01, "faker") as faker,
        gateway_session(broker) as gateway,
    ):
        faker.publish(cmd, b"fake ack")
        # The broker has handled the fake (its PUBACK is back) before the gateway publishes.
        gateway.publish(cmd, b"real ack")
        assert observer.wait_for(cmd, b"real ack"), "the gateway's cmd never arrived"
        assert observer.received == [(cmd, b"real ack")]


def refused_attempts(broker: Broker, stranger_ca: Path) -> dict[str, dict[str, Any]]:
    """attempt_connect() arguments for each way in that the broker must refuse."""
    good = {"username": M01, "password": broker.deployment.unit_password(M01)}
    return {
        "anonymous": {"ca_cert": broker.ca_cert},
        "wrong password": {**good, "password": "not-the-password", "ca_cert": broker.ca_cert},
        "other unit's password": {
            **good,
            "password": broker.deployment.unit_password(C01),
            "ca_cert": broker.ca_cert,
        },
        "plain TCP": {**good, "ca_cert": None},
        "untrusted CA": {**good, "ca_cert": stranger_ca},
    }


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("anonymous", "CONNACK refused: Not authorized"),
        ("wrong password", "CONNACK refused: Not authorized"),
        ("other unit's password", "CONNACK refused: Not authorized"),
        ("plain TCP", "closed before CONNACK"),
        ("untrusted CA", "certificate verify failed"),
    ],
)
def test_broker_refuses(broker: Broker, tmp_path: Path, case: str, expected: str) -> None:
    stranger_ca = tmp_path / "stranger-ca.crt"  # same subject name as ours, another key
    stranger_ca.write_bytes(pki.make_ca(datetime.datetime.now(datetime.UTC)).cert_pem)
    right = attempt_connect(
        broker.host,
        broker.port,
        client_id="control",
        username=M01,
        password=broker.deployment.unit_password(M01),
        ca_cert=broker.ca_cert,
    )
    assert right is None, f"the right password was refused (control): {right}"
    kwargs = refused_attempts(broker, stranger_ca)[case]
    refusal = attempt_connect(broker.host, broker.port, client_id="intruder", **kwargs)
    assert refusal is not None, f"{case}: the broker accepted the connection"
    assert expected in refusal


def test_broker_runs_as_the_provisioning_user(broker: Broker) -> None:
    assert process_uid(broker.process.pid) == os.geteuid()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can start mosquitto as another user")
def test_broker_started_as_root_can_drop_to_its_own_user(
    tmp_path: Path, reachable_dir: Path
) -> None:
    deployment = provision(reachable_dir / "d", (M01,), free_port(), "--broker-user", "mosquitto")
    with running_broker(deployment, tmp_path / "mosquitto.log") as broker:
        assert process_uid(broker.process.pid) != 0
        with gateway_session(broker, ("balise/v1/+/+",)) as gateway:
            with unit_session(broker, M01, "dropped") as unit:
                unit.publish(unit_topic(M01, "pos"), b"hello")
            assert gateway.wait_for(unit_topic(M01, "pos"), b"hello"), broker.log()


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """A directory the mosquitto user can reach: pytest's tmp_path is under a 0700 one."""
    base = Path(tempfile.mkdtemp(prefix="balise-test-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base)


def test_unit_added_to_a_running_broker_connects_after_sighup(broker: Broker) -> None:
    deployment = broker.deployment
    provision(deployment.directory, ("KEN-M02",), deployment.port)
    broker.process.send_signal(signal.SIGHUP)  # mosquitto rereads the password and ACL files
    wait_until_accepted(broker, "KEN-M02")
    with gateway_session(broker, ("balise/v1/+/+",)) as gateway:
        with unit_session(broker, "KEN-M02", "new") as unit:
            unit.publish(unit_topic("KEN-M02", "pos"), b"new unit")
        assert gateway.wait_for(unit_topic("KEN-M02", "pos"), b"new unit")


def wait_until_accepted(broker: Broker, unit_id: str) -> None:
    """The reload happens in the broker's own loop, a moment after the signal."""
    password = broker.deployment.unit_password(unit_id)
    deadline = time.monotonic() + WAIT_S
    while True:
        refusal = attempt_connect(
            broker.host,
            broker.port,
            client_id=f"{unit_id}-probe",
            username=unit_id,
            password=password,
            ca_cert=broker.ca_cert,
        )
        if refusal is None:
            return
        assert time.monotonic() < deadline, f"{unit_id} still refused: {refusal}\n{broker.log()}"
        time.sleep(0.05)


def process_uid(pid: int) -> int:
    """The effective uid of a running process (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[2])
    raise AssertionError(f"no Uid line for process {pid}")


def test_a_rotated_password_takes_effect_on_sighup(broker: Broker, tmp_path: Path) -> None:
    deployment = broker.deployment
    old_password = deployment.unit_password(M01)
    with (
        gateway_session(broker) as gateway,
        unit_session(broker, C01, "bystander") as bystander,
        unit_session(broker, M01, "old-password") as old_session,
    ):
        (deployment.directory / f"units/{M01}.toml").rename(tmp_path / f"{M01}.toml.old")
        provision(deployment.directory, (M01,), deployment.port)
        broker.process.send_signal(signal.SIGHUP)
        wait_until_accepted(broker, M01)
        deadline = time.monotonic() + WAIT_S
        while old_session.client.is_connected():
            assert time.monotonic() < deadline, "the old password's session is still connected"
            time.sleep(0.05)
        assert gateway.client.is_connected() and bystander.client.is_connected()
    refusal = attempt_connect(
        broker.host,
        broker.port,
        client_id="old-password-again",
        username=M01,
        password=old_password,
        ca_cert=broker.ca_cert,
    )
    assert refusal == "CONNACK refused: Not authorized"
