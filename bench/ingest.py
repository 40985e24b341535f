"""Gateway ingest throughput against a bare subscriber, on the same broker, in one run.

    .venv/bin/python bench/ingest.py [--units 10000] [--seconds 15] [--publishers 2]
                                     [--sos-every 0.5] [--backlog 100000]
                                     [--publisher-nice 19] [--bulk-workers 1]
                                     [--bulk-nice N] [--broker-inflight N]

A provisioned deployment and the real mosquitto (TLS) are started on free ports.
Publisher processes send position messages for `--units` unit ids round robin, as
fast as the broker takes them (QoS 1), as one bench user the ACL lets write every
unit's topic (10,000 TLS sessions would measure the publishers, not the gateway).
The publishers run at the lowest CPU priority (`--publisher-nice 19`): units are
other machines, and on this one they should load the broker and the consumer
under test, not take their CPU; `--publisher-nice 0` lets them compete (the worst
case, and how this bench ran before 2026-12-06). Both phases run them the same way.

1. Baseline: a bare paho-mqtt subscriber (QoS 1, automatic PUBACK) only counts
   messages for the same time: the ceiling of this broker on this machine. An SOS
   is raised every `--sos-every` s here too, and timed from its publish to that subscriber
   (one session for everything: the SOS queues behind positions, as it did for a
   one-session gateway) and to a second bare session subscribed to `sos` alone
   (the floor for the SOS under this load: the broker and a Python client).
2. The gateway: `balise gateway` as a process (decode, validate, dedupe, SQLite
   store, live state, acknowledgement after commit) with one console on its
   WebSocket live feed. Its rate is records stored per second (from /metrics).
   Meanwhile another unit raises an SOS every `--sos-every` s: the time from its publish to
   the console receiving it on the WebSocket gives p50/p99, split at the moment
   the gateway's MQTT session received it (the SOS view's `received`; one clock,
   one machine): the broker's part, and the gateway's and the feed's. Each
   latency prints p50, p90, p99 and the slowest: below 100 alarms the p99 is
   the slowest one (`--seconds 60 --sos-every 0.25` gives 240).

3. The drain (`--backlog`, 0 skips it): on a 2-core machine the publishers of
   phases 1 and 2 take the CPU the consumers need, so both are bound by them.
   Here both persistent sessions (a bare subscriber's and the gateway's own
   client ids) are registered (the gateway first drains, into a file of its own,
   what phase 2 left queued for it), then taken offline; `--backlog` positions are
   published once and the broker queues them for each. The bare subscriber
   drains its copy alone (first to last message), then two bare sessions sharing
   one subscription, a process each, drain one copy between them (the ceiling on
   both cores: the gateway's `--bulk-workers 2` does the same), then the gateway drains
   its copy alone (first to last record stored, from /metrics; no WebSocket
   client in this phase). No publisher runs meanwhile: each consumer's ceiling
   with only the broker beside it.

Prints both rates and their ratio. Nothing is asserted: see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from paho.mqtt import client as mqtt  # noqa: E402
from websockets.sync.client import connect as ws_connect  # noqa: E402

from protocol import codec, topics  # noqa: E402
from protocol.messages import Position, Sos  # noqa: E402
from tests.conftest import free_port, provision  # noqa: E402

BENCH_USER, BENCH_PASSWORD = "bench", "bench-password"
# The drain phase's second baseline: two bare sessions sharing one subscription (mosquitto
# takes `$share` from MQTT 3.1.1 clients), as the gateway's bulk workers do.
SHARED_BARE = ("bench-bare-shared-0", "bench-bare-shared-1")
SHARED_BARE_FILTER = "$share/bench-bare/" + topics.UPLINK_SUBSCRIPTION
SOS_UNIT = "KEN-SOS"
# One HTTP client for every scrape: httpx.get() builds a client, and its TLS context, each
# time (~30 ms of CPU): at ten scrapes a second that took a third of a core from the gateway.
SCRAPER = httpx.Client(timeout=10.0)


def client(client_id: str, ca: Path, username: str, password: str, **kwargs: object) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, **kwargs)  # type: ignore[arg-type]
    c.username_pw_set(username, password)
    c.tls_set(ca_certs=str(ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(5000)
    return c


def bench_position(unit: str, seq: int, t_ms: int) -> Position:
    """The position the publishers send (and bench/decode.py decodes): a unit moving east."""
    return Position(
        unit=unit,
        seq=seq,
        t_ms=t_ms,
        lat=34.26 + (seq % 100) * 1e-4,
        lon=-6.58,
        speed_mps=8.0,
        heading_deg=90.0,
        hdop=0.9,
        fix=3,
    )


def publisher(
    index: int,
    count: int,
    units: int,
    port: int,
    ca: str,
    seconds: float,
    out: multiprocessing.Queue,  # type: ignore[type-arg]
    limit: int = 0,
    nice: int = 0,
) -> None:
    """One process: positions for its share of the units, as fast as the broker takes them
    (for `seconds`, or until `limit` messages are acknowledged by the broker), at CPU
    priority `nice` (see --publisher-nice)."""
    os.nice(nice)
    pub = client(f"bench-pub-{index}", Path(ca), BENCH_USER, BENCH_PASSWORD)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    mine = [f"KEN-{u:05d}" for u in range(index, units, count)]
    t0 = int(time.time() * 1000) - 3_600_000
    sent = 0
    seq = 1
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline and not (limit and sent >= limit):
        for unit in mine:
            if limit and sent >= limit:
                break
            payload = codec.encode(bench_position(unit, seq, t0 + seq * 1000))
            info = pub.publish(topics.topic(unit, "pos"), payload, qos=1)
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                time.sleep(0.001)
                continue
            sent += 1
            last = info
        seq += 1
    if limit and last is not None:
        last.wait_for_publish(60)  # the broker has them all (PUBACKs come in order)
    pub.loop_stop()
    pub.disconnect()
    out.put(sent)


def run_publishers(args: argparse.Namespace, port: int, ca: Path, total: int = 0) -> int:
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    seconds = 3600.0 if total else args.seconds
    share = -(-total // args.publishers)
    procs = [
        multiprocessing.Process(
            target=publisher,
            args=(
                i,
                args.publishers,
                args.units,
                port,
                str(ca),
                seconds,
                queue,
                share,
                args.publisher_nice,
            ),
        )
        for i in range(args.publishers)
    ]
    for p in procs:
        p.start()
    sent = sum(queue.get() for _ in procs)
    for p in procs:
        p.join()
    return sent


def counter() -> tuple[list[float], Callable[[object, object, object], None]]:
    """[count, first, last] and a paho on_message that fills it."""
    counted = [0.0, 0.0, 0.0]

    def on_message(c: object, u: object, m: object) -> None:
        now = time.monotonic()
        if counted[0] == 0:
            counted[1] = now
        counted[0] += 1
        counted[2] = now

    return counted, on_message


def raise_sos(
    port: int,
    ca: Path,
    sent_at: dict[int, tuple[float, int]],
    stop: threading.Event,
    every_s: float,
) -> None:
    """An SOS every `every_s` from SOS_UNIT (alarm id = seq), its publish time noted in sent_at."""
    sos_client = client("bench-sos", ca, BENCH_USER, BENCH_PASSWORD)
    sos_client.connect("127.0.0.1", port)
    sos_client.loop_start()
    seq = 1
    while not stop.is_set():
        message = Sos(
            unit=SOS_UNIT,
            seq=seq,
            t_ms=int(time.time() * 1000),
            action="raise",
            alarm_id=seq,
            lat=34.26,
            lon=-6.58,
        )
        sent_at[seq] = (time.monotonic(), message.t_ms)
        sos_client.publish(topics.topic(SOS_UNIT, "sos"), codec.encode(message), qos=1)
        seq += 1
        stop.wait(every_s)
    sos_client.loop_stop()
    sos_client.disconnect()


def bare_subscriber(
    args: argparse.Namespace, port: int, ca: Path, user: tuple[str, str]
) -> tuple[float, dict[str, list[float]]]:
    """(msg/s of a subscriber to everything, SOS publish -> on_message in s, by subscriber): the
    same load as phase 2, with a second bare session subscribed to `sos` alone beside it."""
    counted, count = counter()
    sent_at: dict[int, tuple[float, int]] = {}
    latencies: dict[str, list[float]] = {"all": [], "sos": []}
    sos_topic = topics.topic(SOS_UNIT, "sos")

    def timer(name: str) -> Callable[[object, object, Any], None]:
        seen: set[int] = set()

        def on_message(c: object, u: object, m: Any) -> None:
            if name == "all":
                count(c, u, m)
            if m.topic == sos_topic:
                alarm_id = codec.decode(m.topic, m.payload).alarm_id
                if alarm_id in sent_at and alarm_id not in seen:  # not a redelivery
                    seen.add(alarm_id)
                    latencies[name].append(time.monotonic() - sent_at[alarm_id][0])

        return on_message

    subs = []
    for name, subscription in (("all", topics.UPLINK_SUBSCRIPTION), ("sos", sos_topic)):
        sub = client(f"bench-bare-{name}", ca, *user)
        sub.on_message = timer(name)
        sub.connect("127.0.0.1", port)
        sub.subscribe(subscription, qos=1)
        sub.loop_start()
        subs.append(sub)
    time.sleep(1)
    stop = threading.Event()
    sos = threading.Thread(target=raise_sos, args=(port, ca, sent_at, stop, args.sos_every))
    sos.start()
    run_publishers(args, port, ca)
    stop.set()
    sos.join()
    time.sleep(2)
    for sub in subs:
        sub.loop_stop()
        sub.disconnect()
    return counted[0] / max(1e-9, counted[2] - counted[1]), latencies


def shared_drain(
    client_id: str,
    port: int,
    ca: str,
    user: tuple[str, str],
    out: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    """One process: a bare session of the shared pair drains what the broker queued for it;
    puts (count, first, last) once nothing came for 3 s (monotonic clocks: one machine)."""
    counted, on_message = counter()
    sub = client(client_id, Path(ca), *user, clean_session=False)
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    started = time.monotonic()
    while time.monotonic() - (counted[2] or started) < 3:
        time.sleep(0.05)
    sub.disconnect()
    sub.loop_stop()
    out.put((counted[0], counted[1], counted[2]))


def stored(url: str, name: str = "balise_records_stored_total") -> float:
    for line in SCRAPER.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def wait_idle(url: str, quiet_s: float = 2.0) -> None:
    """Until the gateway has received nothing for `quiet_s`."""
    previous, since = -1.0, time.monotonic()
    while time.monotonic() - since < quiet_s:
        count = stored(url, "balise_messages_received_total")
        if count != previous:
            previous, since = count, time.monotonic()
        time.sleep(0.1)


def start_gateway(config: Path, db: Path, http: int) -> subprocess.Popen[bytes]:
    """`balise gateway` as a process; returns once it is connected to the broker."""
    url = f"http://127.0.0.1:{http}"
    gw = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "balise",
            "gateway",
            "--config",
            str(config),
            "--db",
            str(db),
            "--http",
            f"127.0.0.1:{http}",
            "--log-level",
            "WARNING",
        ],
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            if SCRAPER.get(f"{url}/health").json()["mqtt"] == "connected":
                return gw
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            gw.terminate()
            raise SystemExit("the gateway did not come up")
        time.sleep(0.05)


def backlog_run(
    args: argparse.Namespace,
    deployment: Path,
    port: int,
    ca: Path,
    work: Path,
    user: tuple[str, str],
) -> tuple[float, float, float]:
    """Both persistent sessions offline, the same `--backlog` positions queued for each at the
    broker; each drains them alone: (bare msg/s, gateway stored/s). No publisher runs meanwhile."""
    n = args.backlog
    sessions = [("bench-bare-backlog", topics.UPLINK_SUBSCRIPTION)]
    sessions += [(client_id, SHARED_BARE_FILTER) for client_id in SHARED_BARE]
    for client_id, subscription in sessions:
        bare = client(client_id, ca, *user, clean_session=False)
        bare.connect("127.0.0.1", port)
        bare.loop_start()
        bare.subscribe(subscription, qos=1)
        time.sleep(0.5)
        bare.disconnect()
        bare.loop_stop()
    http = free_port()
    url = f"http://127.0.0.1:{http}"
    config = deployment / "gateway.toml"
    # Its sessions now exist. What the live phase left queued for them is drained first (into
    # a file of its own), so that the backlog below is all it gets, as for the bare subscriber.
    gw = start_gateway(config, work / "leftovers.sqlite", http)
    wait_idle(url)
    gw.terminate()
    gw.wait(20)
    sent = run_publishers(args, port, ca, total=n)
    time.sleep(1)

    counted, on_message = counter()
    bare = client("bench-bare-backlog", ca, *user, clean_session=False)
    bare.on_message = on_message
    bare.connect("127.0.0.1", port)
    bare.loop_start()
    while counted[0] < sent and (counted[0] == 0 or time.monotonic() - counted[2] < 3):
        time.sleep(0.05)
    bare.disconnect()
    bare.loop_stop()
    bare_rate = (counted[0] - 1) / max(1e-9, counted[2] - counted[1])
    print(f"  backlog: {sent:,} queued for each; the bare subscriber got {counted[0]:,.0f}")

    # Two bare sessions sharing one subscription, a process each: the ceiling on both cores.
    out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    drainers = [
        multiprocessing.Process(target=shared_drain, args=(client_id, port, str(ca), user, out))
        for client_id in SHARED_BARE
    ]
    for drainer in drainers:
        drainer.start()
    parts = [out.get() for _ in drainers]
    for drainer in drainers:
        drainer.join()
    got = sum(count for count, _, _ in parts)
    span = max(last for _, _, last in parts) - min(first for _, first, _ in parts)
    shared_rate = (got - 1) / max(1e-9, span)
    print(
        f"  backlog: the {len(drainers)} bare sessions sharing a subscription got {got:,.0f} "
        f"({', '.join(f'{count:,.0f}' for count, _, _ in parts)}): {shared_rate:,.0f} msg/s"
    )

    # A port of its own: the one above may have been taken meanwhile (ephemeral ports).
    http = free_port()
    url = f"http://127.0.0.1:{http}"
    gw = start_gateway(config, work / "backlog.sqlite", http)
    try:
        first = last = 0.0
        first_count = count = previous = 0.0
        while count < sent:
            now, count = time.monotonic(), stored(url)
            if count and not first:
                first, first_count = now, count
            if count != previous:
                last, previous = now, count
            elif first and now - last > 3:
                break
            # Each scrape is a request on the gateway's event loop: ten a second time the
            # drain to 0.1 s without taking a share of the gateway's process.
            time.sleep(0.1)
        print(f"  backlog: the gateway stored {count:,.0f}")
        return bare_rate, shared_rate, (count - first_count) / max(1e-9, last - first)
    finally:
        gw.terminate()
        gw.wait(20)


def gc_pauses(url: str) -> str:
    """The gateway's garbage-collector pauses since it started, from /metrics (a pause
    stops every thread of its process, an SOS's too: gateway/pauses.py)."""
    values: dict[str, float] = {}
    for line in SCRAPER.get(f"{url}/metrics").text.splitlines():
        if line.startswith(("balise_gc_pause_seconds_count", "balise_gc_longest_pause_seconds")):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    parts = []
    for generation in ("2", "1", "0"):
        count = values.get(f'balise_gc_pause_seconds_count{{generation="{generation}"}}', 0)
        longest = values.get(f'balise_gc_longest_pause_seconds{{generation="{generation}"}}', 0)
        parts.append(f"generation {generation}: {count:,.0f}, longest {longest * 1000:.0f} ms")
    return "; ".join(parts)


def gateway_run(
    args: argparse.Namespace, deployment: Path, port: int, ca: Path, work: Path
) -> tuple[float, list[tuple[float, float, float]], str]:
    http = free_port()
    url = f"http://127.0.0.1:{http}"
    config = deployment / "gateway.toml"
    token = subprocess.run(
        [
            sys.executable,
            "-m",
            "balise",
            "tokens",
            "create",
            "bench",
            "--role",
            "viewer",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    gw = start_gateway(config, work / "bench.sqlite", http)
    try:
        sent_at: dict[int, tuple[float, int]] = {}  # alarm id -> (monotonic s, wall ms)
        latencies: list[tuple[float, float, float]] = []  # total, to the gateway, gateway on (s)
        stop = threading.Event()

        def console() -> None:
            with ws_connect(
                url.replace("http", "ws") + "/api/live",
                additional_headers={"Authorization": f"Bearer {token}"},
                max_size=None,  # a delta with 10,000 moved units is several MB
            ) as feed:
                while not stop.is_set():
                    try:
                        frame = json.loads(feed.recv(timeout=1))
                    except TimeoutError:
                        continue
                    now, now_ms = time.monotonic(), time.time() * 1000
                    for unit in frame.get("units", []):
                        sos = unit.get("sos")
                        if unit["id"] == SOS_UNIT and sos and sos["alarm_id"] in sent_at:
                            sent, sent_ms = sent_at.pop(sos["alarm_id"])
                            # sos["received"]: the gateway's clock (this machine's) on arrival
                            latencies.append(
                                (
                                    now - sent,
                                    (sos["received"] - sent_ms) / 1000,
                                    (now_ms - sos["received"]) / 1000,
                                )
                            )

        threads = [
            threading.Thread(target=console),
            threading.Thread(target=raise_sos, args=(port, ca, sent_at, stop, args.sos_every)),
        ]
        for t in threads:
            t.start()
        before, started = stored(url), time.monotonic()
        run_publishers(args, port, ca)
        # Sustained: count only what was stored while the publishers ran.
        rate = (stored(url) - before) / (time.monotonic() - started)
        stop.set()
        for t in threads:
            t.join()
        return rate, latencies, gc_pauses(url)
    finally:
        gw.terminate()
        gw.wait(20)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def spread(seconds: list[float]) -> str:
    points = ", ".join(f"p{p} {percentile(seconds, p) * 1000:.0f}" for p in (50, 90, 99))
    slowest = max(seconds, default=float("nan")) * 1000
    return f"{points}, slowest {slowest:.0f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument(
        "--sos-every", type=float, default=0.5, help="seconds between two SOS in phases 1 and 2"
    )
    parser.add_argument(
        "--backlog",
        type=int,
        default=100_000,
        help="positions queued at the broker for the drain phase (0: skip it)",
    )
    parser.add_argument(
        "--publisher-nice",
        type=int,
        default=19,
        help="the publishers' CPU priority (19: they take only what the broker and the"
        " subscriber under test leave, as units on other machines would; 0: they compete)",
    )
    parser.add_argument(
        "--bulk-nice",
        type=int,
        default=None,
        help="the gateway's [ingest] bulk_nice (default: the gateway's own default)",
    )
    parser.add_argument(
        "--bulk-workers",
        type=int,
        default=1,
        help="the gateway's [ingest] bulk_workers (default 1, as shipped; 2: one per core here)",
    )
    parser.add_argument(
        "--broker-inflight",
        type=int,
        default=0,
        help="the broker's max_inflight_messages (an experiment; default: as provisioned)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        port = free_port()
        deployment = provision(work / "deployment", ("KEN-M01",), port).directory
        # The bench user may publish for every unit; the gateway's user reads them all.
        subprocess.run(
            ["mosquitto_passwd", "-b", str(deployment / "passwd"), BENCH_USER, BENCH_PASSWORD],
            check=True,
        )
        conf = deployment / "mosquitto.conf"  # the drain phase queues more than the default
        text = conf.read_text().replace("max_queued_messages 100000", "max_queued_messages 0")
        if args.broker_inflight:
            text = text.replace(
                "max_inflight_messages 1000", f"max_inflight_messages {args.broker_inflight}"
            )
        conf.write_text(text)
        ingest = f"bulk_workers = {args.bulk_workers}\n"
        if args.bulk_nice is not None:
            ingest += f"bulk_nice = {args.bulk_nice}\n"
        with (deployment / "gateway.toml").open("a") as gateway_toml:
            gateway_toml.write("\n[ingest]\n" + ingest)
        with (deployment / "acl").open("a") as acl:
            acl.write(f"\nuser {BENCH_USER}\ntopic write balise/v1/#\n")
        mosquitto = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
        broker = subprocess.Popen(
            [mosquitto, "-c", str(deployment / "mosquitto.conf")], stderr=subprocess.DEVNULL
        )
        ca = deployment / "ca.crt"
        try:
            time.sleep(1)
            gateway_user = ("balise.gateway", _gateway_password(deployment))
            print(
                f"ingest bench: {args.units:,} units, {args.publishers} publisher processes, "
                f"at nice {args.publisher_nice}, {args.seconds:.0f} s per phase; "
                f"gateway with {args.bulk_workers} bulk workers; "
                f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"
            )
            bare, bare_latencies = bare_subscriber(args, port, ca, gateway_user)
            print(f"  bare paho subscriber (baseline, counts only)   {bare:>9,.0f} msg/s")
            for name, what in (("all", "to everything"), ("sos", "to sos alone")):
                part = bare_latencies[name]
                print(
                    f"  SOS publish -> a bare session subscribed {what}, {len(part)} alarms: "
                    + spread(part)
                )
            rate, latencies, collections = gateway_run(args, deployment, port, ca, work)
            print(f"  gateway pipeline (stored, live, WebSocket)    {rate:>9,.0f} positions/s")
            print(f"  ratio gateway / bare                            {rate / bare:9.2f}")
            for label, index in (
                (f"SOS publish -> WebSocket, {len(latencies)} alarms:", 0),
                ("  of which publish -> gateway's MQTT session:", 1),
                ("  of which gateway's session -> WebSocket:", 2),
            ):
                part = [sample[index] for sample in latencies]
                print(f"  {label} {spread(part)}")
            print(f"  the gateway's garbage collections: {collections}")
            if args.backlog:
                bare_drain, shared, gateway_drain = backlog_run(
                    args, deployment, port, ca, work, gateway_user
                )
                print(f"  drain, bare paho subscriber (baseline)        {bare_drain:>9,.0f} msg/s")
                print(f"  drain, 2 bare sessions sharing (both cores)   {shared:>9,.0f} msg/s")
                print(
                    f"  drain, gateway pipeline (stored, live)        {gateway_drain:>9,.0f} pos/s"
                )
                for name, baseline in (("bare", bare_drain), ("2 bare sharing", shared)):
                    print(f"  ratio gateway / {name:<32}{gateway_drain / baseline:9.2f}")
            print(f"  load at the end {os.getloadavg()[0]:.2f}")
        finally:
            broker.terminate()
            broker.wait(10)
    return 0


def _gateway_password(deployment: Path) -> str:
    import tomllib

    return str(tomllib.loads((deployment / "gateway.toml").read_text())["broker"]["password"])


if __name__ == "__main__":
    sys.exit(main())
