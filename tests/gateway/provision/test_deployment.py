"""`balise provision` on disk: what it writes, what a rerun keeps, and failures that leave
nothing behind. In-process through the CLI's parser, so errors arrive as ProvisionError."""

from __future__ import annotations

import errno
import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest

from balise.cli import build_parser
from gateway.errors import ProvisionError
from gateway.provision import command, mosquitto, pki, writer

SECRET = {"ca.key", "server.key", "passwd", "acl", "gateway.toml"}
PUBLIC = {"ca.crt", "server.crt", "mosquitto.conf", "deployment.toml"}
KEPT = ["ca.crt", "ca.key", "server.crt", "server.key", "gateway.toml"]


def provision(directory: Path, units: str, *options: str) -> None:
    argv = ["provision", "--dir", str(directory), "--units", units, *options]
    assert command.run(build_parser("provision").parse_args(argv)) == 0


def snapshot(directory: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under `directory`: content, mode and inode (a replaced file gets a new one)."""
    return {
        str(path.relative_to(directory)): (
            path.read_bytes(),
            stat.S_IMODE(path.stat().st_mode),
            path.stat().st_ino,
        )
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def load(path: Path) -> dict[str, Any]:
    with path.open("rb") as stream:
        return tomllib.load(stream)


@pytest.fixture
def deployed(tmp_path: Path) -> Path:
    directory = tmp_path / "deployment"
    provision(directory, "KEN-M01,KEN-C01", "--host", "broker.example", "--port", "18883")
    return directory


def test_writes_every_file_with_its_mode(deployed: Path) -> None:
    names = {str(p.relative_to(deployed)) for p in deployed.rglob("*") if p.is_file()}
    assert names == SECRET | PUBLIC | {"units/KEN-M01.toml", "units/KEN-C01.toml"}
    for name in SECRET | {"units/KEN-M01.toml", "units/KEN-C01.toml"}:
        assert mode(deployed / name) == 0o600, name
    for name in PUBLIC:
        assert mode(deployed / name) == 0o644, name
    assert mode(deployed / "units") == 0o700
    assert mode(deployed / "broker-data") == 0o700
    assert mode(deployed) == 0o755
    assert os.listdir(deployed.parent) == ["deployment"], "a staging directory was left behind"


def test_configs_point_at_the_first_host_and_their_passwords_are_in_passwd(
    deployed: Path,
) -> None:
    hashes = mosquitto.parse_passwd((deployed / "passwd").read_text())
    unit = load(deployed / "units/KEN-M01.toml")
    gateway = load(deployed / "gateway.toml")
    assert unit["unit"] == {"id": "KEN-M01"}
    assert {k: v for k, v in unit["broker"].items() if k != "password"} == {
        "host": "broker.example",
        "port": 18883,
        "ca_file": str(deployed / "ca.crt"),
        "username": "KEN-M01",
    }
    assert gateway["db"] == str(deployed / "gateway.sqlite")
    assert gateway["http"] == "127.0.0.1:8080"
    assert gateway["broker"]["username"] == "balise.gateway"
    passwords = {
        "KEN-M01": unit["broker"]["password"],
        "KEN-C01": load(deployed / "units/KEN-C01.toml")["broker"]["password"],
        "balise.gateway": gateway["broker"]["password"],
    }
    assert set(hashes) == set(passwords)
    assert len(set(passwords.values())) == 3
    for username, password in passwords.items():
        assert mosquitto.password_matches(hashes[username], password), username


def test_rerun_adds_units_and_keeps_every_secret(deployed: Path) -> None:
    before = snapshot(deployed)
    provision(deployed, "KEN-M02,KEN-M01")
    after = snapshot(deployed)
    for name in [*KEPT, "units/KEN-M01.toml", "units/KEN-C01.toml"]:
        assert after[name] == before[name], f"{name} changed"
    old_hashes = mosquitto.parse_passwd(before["passwd"][0].decode())
    new_hashes = mosquitto.parse_passwd(after["passwd"][0].decode())
    assert new_hashes == {**old_hashes, "KEN-M02": new_hashes["KEN-M02"]}
    assert "user KEN-M02" in after["acl"][0].decode()
    assert after["units/KEN-M02.toml"][1] == 0o600
    assert load(deployed / "units/KEN-M02.toml")["broker"]["port"] == 18883  # settings kept


def test_rerun_with_nothing_new_touches_nothing(deployed: Path) -> None:
    before = snapshot(deployed)
    provision(deployed, "KEN-M01")
    assert snapshot(deployed) == before


def test_rerun_repairs_a_loosened_mode(deployed: Path) -> None:
    (deployed / "ca.key").chmod(0o644)
    provision(deployed, "KEN-M01")
    assert mode(deployed / "ca.key") == 0o600


def test_rerun_can_move_the_listener_without_new_secrets(deployed: Path) -> None:
    before = snapshot(deployed)
    provision(deployed, "KEN-M01", "--port", "9883", "--bind", "127.0.0.1")
    assert "listener 9883 127.0.0.1" in (deployed / "mosquitto.conf").read_text()
    assert load(deployed / "units/KEN-C01.toml")["broker"]["port"] == 9883
    for name in ["ca.key", "server.key", "passwd"]:
        assert (deployed / name).read_bytes() == before[name][0]


def test_rerun_keeps_what_was_added_by_hand_to_a_unit_file(deployed: Path) -> None:
    unit_file = deployed / "units/KEN-M01.toml"
    edited = unit_file.read_text() + "\n# the Pi on the motorcycle\n[pins]\nsos = 17\n"
    unit_file.write_text(edited)
    provision(deployed, "KEN-M02")
    assert unit_file.read_text() == edited, "an unchanged file must stay as it is"
    provision(deployed, "KEN-M01", "--port", "9883")
    reread = load(unit_file)
    assert reread["pins"] == {"sos": 17}
    assert reread["broker"]["port"] == 9883


def test_moving_a_unit_file_away_rotates_that_units_password(deployed: Path) -> None:
    before = snapshot(deployed)
    old_password = load(deployed / "units/KEN-M01.toml")["broker"]["password"]
    (deployed / "units/KEN-M01.toml").rename(deployed / "KEN-M01.toml.old")
    provision(deployed, "KEN-M01")
    new_password = load(deployed / "units/KEN-M01.toml")["broker"]["password"]
    hashes = mosquitto.parse_passwd((deployed / "passwd").read_text())
    assert new_password != old_password
    assert mosquitto.password_matches(hashes["KEN-M01"], new_password)
    assert not mosquitto.password_matches(hashes["KEN-M01"], old_password)
    old_hashes = mosquitto.parse_passwd(before["passwd"][0].decode())
    assert hashes["KEN-C01"] == old_hashes["KEN-C01"]
    for name in [*KEPT, "units/KEN-C01.toml"]:
        assert (deployed / name).read_bytes() == before[name][0], name


def test_moving_a_unit_file_away_and_rerunning_removes_the_unit(deployed: Path) -> None:
    (deployed / "units/KEN-C01.toml").rename(deployed.parent / "KEN-C01.toml.old")
    provision(deployed, "KEN-M01")
    assert "KEN-C01" not in mosquitto.parse_passwd((deployed / "passwd").read_text())
    assert "KEN-C01" not in (deployed / "acl").read_text()


def test_rerun_refuses_a_host_the_server_certificate_does_not_cover(deployed: Path) -> None:
    before = snapshot(deployed)
    with pytest.raises(ProvisionError, match=re.escape("does not cover other.example")):
        provision(deployed, "KEN-M02", "--host", "other.example")
    assert snapshot(deployed) == before


def test_rerun_may_connect_to_another_host_the_certificate_covers(deployed: Path) -> None:
    provision(deployed, "KEN-M01", "--host", "localhost")
    assert load(deployed / "gateway.toml")["broker"]["host"] == "localhost"


def test_units_are_added_while_the_ca_key_is_offline(deployed: Path) -> None:
    (deployed / "ca.key").unlink()
    provision(deployed, "KEN-M02")
    assert (deployed / "units/KEN-M02.toml").exists()
    assert not (deployed / "ca.key").exists()


def test_a_new_server_certificate_needs_the_ca_key(deployed: Path) -> None:
    for name in ["ca.key", "server.crt", "server.key"]:
        (deployed / name).unlink()
    with pytest.raises(ProvisionError, match="needs the CA key"):
        provision(deployed, "KEN-M01")


def test_a_removed_server_certificate_is_issued_again(deployed: Path) -> None:
    old_ca = (deployed / "ca.crt").read_bytes()
    (deployed / "server.crt").unlink()
    (deployed / "server.key").unlink()
    provision(deployed, "KEN-M01", "--host", "new.example")
    assert (deployed / "ca.crt").read_bytes() == old_ca
    assert "new.example" in pki.cert_hosts((deployed / "server.crt").read_bytes())
    assert load(deployed / "gateway.toml")["broker"]["host"] == "new.example"


def test_a_missing_ca_certificate_is_not_replaced(deployed: Path) -> None:
    (deployed / "ca.crt").unlink()
    with pytest.raises(ProvisionError, match=re.escape("ca.crt is missing")):
        provision(deployed, "KEN-M01")


def test_a_damaged_unit_file_is_named(deployed: Path) -> None:
    (deployed / "units/KEN-C01.toml").write_text("unit_id = \n")
    with pytest.raises(ProvisionError, match=re.escape("units/KEN-C01.toml is not valid TOML")):
        provision(deployed, "KEN-M01")


def test_a_directory_that_is_not_a_deployment_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ProvisionError, match="holds no balise deployment"):
        provision(tmp_path, "KEN-M01")
    assert os.listdir(tmp_path) == ["notes.txt"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--port", "0"), "bad port 0"),
        (("--port", "65536"), "bad port 65536"),
        (("--host", "bad host"), "bad host 'bad host'"),
        (("--bind", "not an address"), "bad host 'not an address'"),
        (("--broker-user", "no such user"), "bad broker user 'no such user'"),
    ],
)
def test_bad_options_are_named(tmp_path: Path, options: tuple[str, ...], message: str) -> None:
    with pytest.raises(ProvisionError, match=message):
        provision(tmp_path / "d", "KEN-M01", *options)
    assert not (tmp_path / "d").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the broker user only matters when run as root")
def test_a_broker_user_that_cannot_reach_the_directory_is_refused(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    with pytest.raises(ProvisionError, match=f"'mosquitto' cannot reach .*{tmp_path.name}"):
        provision(tmp_path / "d", "KEN-M01", "--broker-user", "mosquitto")
    with pytest.raises(ProvisionError, match="'nobody-here' does not exist"):
        provision(tmp_path / "d", "KEN-M01", "--broker-user", "nobody-here")


def test_a_directory_under_a_regular_file_fails_and_leaves_nothing(tmp_path: Path) -> None:
    # Root ignores permission bits, so make the path impossible instead: its parent is a file.
    (tmp_path / "plain-file").write_text("")
    with pytest.raises(ProvisionError, match=r"cannot create .*plain-file/deployment: Not a dir"):
        provision(tmp_path / "plain-file" / "deployment", "KEN-M01")
    assert os.listdir(tmp_path) == ["plain-file"]


def test_a_missing_parent_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match=r"cannot create .*No such file"):
        provision(tmp_path / "absent" / "deployment", "KEN-M01")
    assert os.listdir(tmp_path) == []


def test_a_failure_while_building_a_new_directory_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(self: Path, target: Path) -> Path:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "rename", no_space)
    with pytest.raises(ProvisionError, match="No space left"):
        provision(tmp_path / "deployment", "KEN-M01")
    assert os.listdir(tmp_path) == []


def fail_on_call(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, failing: int) -> None:
    """Make module.name raise ENOSPC on its `failing`-th call, and behave before and after."""
    real = getattr(module, name)
    calls = 0

    def flaky(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == failing:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, flaky)


def test_a_failure_while_replacing_files_restores_the_old_ones(
    deployed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (deployed / "units/KEN-C01.toml").chmod(0o640)  # so the rollback must restore a mode too
    before = snapshot(deployed)
    fail_on_call(monkeypatch, writer.os, "replace", failing=3)
    with pytest.raises(ProvisionError, match="No space left"):
        provision(deployed, "KEN-M02,KEN-M03")
    after = snapshot(deployed)
    assert {name: value[:2] for name, value in after.items()} == {
        name: value[:2] for name, value in before.items()
    }
    assert not list(deployed.rglob("*.tmp"))


def test_a_failure_while_staging_leaves_an_empty_directory_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_on_call(monkeypatch, writer, "_write_temp", failing=4)
    with pytest.raises(ProvisionError, match="No space left"):
        provision(tmp_path, "KEN-M01")
    assert os.listdir(tmp_path) == []
