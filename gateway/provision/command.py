"""`balise provision`: arguments, then plan, write and a short summary of where things are."""

from __future__ import annotations

import argparse
import datetime
import os
import pwd
from pathlib import Path

from gateway.provision import deployment, writer
from gateway.provision.contract import GATEWAY_USER, parse_units


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        required=True,
        type=Path,
        help="the deployment directory; created if absent, extended if it holds one",
    )
    parser.add_argument(
        "--units",
        required=True,
        metavar="ID[:TYPE],...",
        help="unit ids to add, each with its vehicle type if known (motorcycle or car), e.g. "
        "KEN-M01:motorcycle,KEN-C01:car; existing units are kept as they are",
    )
    parser.add_argument(
        "--host",
        action="append",
        dest="hosts",
        metavar="NAME",
        help="a name or address of the broker for its certificate (repeatable); the first is "
        "the one units and the gateway connect to (default localhost)",
    )
    parser.add_argument("--port", type=int, help="the broker's TLS port (default 8883)")
    parser.add_argument("--bind", help="the address the broker listens on (default 0.0.0.0)")
    parser.add_argument(
        "--broker-user",
        help="the user mosquitto runs as when started as root; it gets the broker's files "
        "(default: the user running this command)",
    )


def run(args: argparse.Namespace) -> int:
    unit_ids, unit_types = parse_units(args.units)
    request = deployment.Request(
        directory=Path(os.path.abspath(args.dir)),
        unit_ids=unit_ids,
        unit_types=unit_types,
        hosts=None if args.hosts is None else tuple(args.hosts),
        port=args.port,
        bind=args.bind,
        broker_user=args.broker_user,
    )
    now = datetime.datetime.now(datetime.UTC)
    plan = deployment.plan(request, default_broker_user=_current_user(), now=now)
    written = writer.write_plan(plan)
    print(summary(plan, written))
    return 0


def summary(plan: deployment.Plan, written: tuple[str, ...]) -> str:
    d = plan.directory
    added = ", ".join(plan.new_unit_ids) or "none (all were already there)"
    lines = [
        f"Deployment in {d}",
        f"  units: {', '.join(plan.unit_ids)} (added: {added})",
        f"  broker: {plan.settings.connect_host}:{plan.settings.port}, TLS, "
        f"listening on {plan.settings.bind}, runs as {plan.settings.broker_user}",
        f"  CA certificate: {d / deployment.CA_CERT}" + (" (new)" if plan.new_ca else " (kept)"),
        f"  unit configs: {d / deployment.UNITS}/<id>.toml; gateway: {d / deployment.GATEWAY}"
        f" (user {GATEWAY_USER})",
        f"  files written: {len(written)}",
        f"Start the broker:  mosquitto -c {d / deployment.CONF}",
    ]
    if plan.new_unit_ids and not plan.new_ca:
        lines.append(
            "A running broker reads the new users and ACL after: "
            "kill -HUP <mosquitto pid> (or a restart)"
        )
    if (d / deployment.CA_KEY).exists():
        lines.append(f"In production move {d / deployment.CA_KEY} offline (docs/deployment.md).")
    return "\n".join(lines)


def _current_user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid with no passwd entry, as in some containers
        return str(os.geteuid())
