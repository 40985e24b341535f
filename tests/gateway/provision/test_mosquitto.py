"""mosquitto's files as text: the password hash, the ACL and mosquitto.conf."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from gateway.errors import ProvisionError
from gateway.provision import mosquitto
from gateway.provision.contract import UPLINK_KINDS

# Written by mosquitto_passwd 2.0.11: `mosquitto_passwd -c -b pwfile alice s3cret`.
MOSQUITTO_PASSWD_LINE = (
    "alice:$7$101$ofcmLREu0aLLm0ru$DMsg5+ruY2HPDAGOl/2T7WRigOybXepj02E/EXRBmNaVrhlOqxiaz"
    "bCM3eaKBhrtDqwCQBEikpTBM+bfwaMWRw=="
)


def test_hash_is_what_mosquitto_passwd_writes() -> None:
    expected = MOSQUITTO_PASSWD_LINE.split(":", 1)[1]
    salt = base64.b64decode(expected.split("$")[3])
    assert mosquitto.hash_password("s3cret", salt=salt) == expected


def test_fresh_hash_has_mosquittos_shape_and_matches() -> None:
    password_hash = mosquitto.hash_password("s3cret")
    _, kind, iterations, salt, key = password_hash.split("$")
    assert (kind, iterations) == ("7", "101")
    assert len(base64.b64decode(salt)) == 12
    assert len(base64.b64decode(key)) == 64
    assert mosquitto.password_matches(password_hash, "s3cret")
    assert not mosquitto.password_matches(password_hash, "s3cret ")


def test_password_matches_a_mosquitto_passwd_line_and_rejects_junk() -> None:
    entries = mosquitto.parse_passwd("# comment\n" + MOSQUITTO_PASSWD_LINE + "\n")
    assert mosquitto.password_matches(entries["alice"], "s3cret")
    assert not mosquitto.password_matches("$6$abc$def", "s3cret")
    assert not mosquitto.password_matches("$7$101$!!$!!", "s3cret")


def test_passwd_round_trips() -> None:
    hashes = {"KEN-M01": mosquitto.hash_password("a"), "balise.gateway": "$7$101$x$y"}
    assert mosquitto.parse_passwd(mosquitto.render_passwd(hashes)) == hashes


def _acl_blocks(text: str) -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    user = ""
    for line in text.splitlines():
        if line.startswith("user "):
            user = line.removeprefix("user ")
            blocks[user] = []
        elif line.startswith("topic ") or line.startswith("pattern "):
            blocks[user].append(line)
    return blocks


def test_acl_gives_each_unit_its_own_uplinks_and_cmd_read_only() -> None:
    blocks = _acl_blocks(mosquitto.render_acl(["KEN-M01", "KEN-C01"]))
    assert "" not in blocks, "a rule before any 'user' line would apply to anonymous clients"
    assert blocks["KEN-M01"] == [
        *(f"topic write balise/v1/KEN-M01/{kind}" for kind in UPLINK_KINDS),
        "topic read balise/v1/KEN-M01/cmd",
    ]
    assert blocks["balise.gateway"] == [
        *(f"topic read balise/v1/+/{kind}" for kind in UPLINK_KINDS),
        "topic write balise/v1/+/cmd",
    ]


def test_acl_has_no_pattern_and_no_readwrite() -> None:
    text = mosquitto.render_acl(["KEN-M01"])
    rules = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert not [r for r in rules if r.startswith("pattern") or "readwrite" in r or "#" in r]


def _files(root: Path) -> mosquitto.BrokerFiles:
    return mosquitto.BrokerFiles(
        password_file=root / "passwd",
        acl_file=root / "acl",
        persistence_dir=root / "broker-data",
        ca_cert=root / "ca.crt",
        server_cert=root / "server.crt",
        server_key=root / "server.key",
    )


def test_conf_is_secure_and_points_at_absolute_files() -> None:
    conf = mosquitto.render_conf(
        _files(Path("/srv/balise")), port=8883, bind="0.0.0.0", broker_user="root"
    )
    lines = set(conf.splitlines())
    assert {
        "per_listener_settings false",
        "allow_anonymous false",
        "password_file /srv/balise/passwd",
        "acl_file /srv/balise/acl",
        "user root",
        "persistence true",
        "persistence_location /srv/balise/broker-data",
        "listener 8883 0.0.0.0",
        "cafile /srv/balise/ca.crt",
        "certfile /srv/balise/server.crt",
        "keyfile /srv/balise/server.key",
        "tls_version tlsv1.2",
    } <= lines
    assert [line for line in lines if line.startswith("listener")] == ["listener 8883 0.0.0.0"]


def test_conf_refuses_a_path_that_would_start_a_new_option() -> None:
    with pytest.raises(ProvisionError, match="control character"):
        mosquitto.render_conf(
            _files(Path("/srv/x\nallow_anonymous true")), port=1, bind="::", broker_user="root"
        )
