"""`balise users add NAME --role ROLE --config gateway.toml`: a dispatcher's account.

The password comes from a prompt (asked twice) or, when stdin is not a
terminal, from its first line, so scripts can pipe it in. It is stored as an
argon2 hash in the room database that gateway.toml names.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from gateway import config as gateway_config
from gateway.room import ROLES, RoomError, RoomStore


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create an account, or set a new password and role")
    add.add_argument("name", help="the login name")
    add.add_argument("--role", required=True, choices=ROLES, help="what the account may do")
    add.add_argument("--config", required=True, help="gateway.toml")


def read_password(name: str) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {name}: ")
    if getpass.getpass("again: ") != first:
        raise RoomError("the two passwords differ")
    return first


def run(args: argparse.Namespace) -> int:
    config = gateway_config.load(args.config)
    password = read_password(args.name)
    room = RoomStore(config.room_db)
    try:
        room.add_user(args.name, args.role, password)
    finally:
        room.close()
    print(f"account {args.name} ({args.role}) saved in {config.room_db}")
    return 0
