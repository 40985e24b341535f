"""`balise tokens create NAME --role ROLE --config gateway.toml`: a machine client's token.

Prints the bearer token once; only its SHA-256 is kept. Give it to the other
system as `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import argparse

from gateway import config as gateway_config
from gateway.room import ROLES, RoomStore


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="print a new bearer token (shown only once)")
    create.add_argument("name", help="what the token is for, e.g. the client system's name")
    create.add_argument("--role", required=True, choices=ROLES, help="what the token may do")
    create.add_argument("--config", required=True, help="gateway.toml")


def run(args: argparse.Namespace) -> int:
    config = gateway_config.load(args.config)
    room = RoomStore(config.room_db)
    try:
        print(room.create_token(args.name, args.role))
    finally:
        room.close()
    return 0
