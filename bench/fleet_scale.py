"""The largest simulated fleet this machine runs in real time.

    .venv/bin/python bench/fleet_scale.py [--sizes 1000,4000,5000,6000] [--processes 1,auto]
                                          [--seconds 30]

For each size and each number of fleet processes: a deployment with that many
units, the real mosquitto (TLS), and `balise sim fleet --processes K`'s worker
processes (every unit the real firmware core with its own MQTT session; K = 1 is
one worker, the single-process fleet in a process of its own), plus a bare
subscriber in this process counting what reaches the broker. After the units
have connected (the connect spread plus 10 s: each TLS handshake blocks its
process's loop for a few ms), a window of --seconds is measured.
Printed per row: sessions connected; the real-time factor (simulated seconds the
units stepped / wall seconds: 1.00 is real time; a fleet a whole second late
skips it, so below 1 is the share of seconds its units got a fix); messages per second the units
published and the subscriber received (delivered / published); CPU over the
window, as % of one core, of the fleet's workers (all of them), also per unit-second
stepped (us/step: the fleet's cost per unit, which a busy machine disturbs less than
the real-time factor), of mosquitto and of this process (the counting subscriber);
RSS per unit (the workers' growth from before their Fleet was made, divided by the
units); the lag of a unit's
one-second step (mean and worst); the load average at the end of the row. The
first (smallest) row is the in-run baseline. Nothing is asserted: see
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paho.mqtt import client as mqtt  # noqa: E402

from protocol import topics  # noqa: E402
from simulators.fleet import FleetOptions  # noqa: E402
from simulators.fleet_processes import FleetProcesses, default_processes  # noqa: E402
from tests.conftest import free_port, provision  # noqa: E402

TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) * TICK_S  # utime, stime: fields 14 and 15


def wait_listening(port: int, broker: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """Until mosquitto accepts TCP on `port` (it reads 6,000 users first; a busy machine)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        if broker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"mosquitto is not listening on {port} (status {broker.poll()})")
        time.sleep(0.1)


class Row:
    def __init__(self, size: int, processes: int) -> None:
        self.size, self.processes = size, processes
        self.connected = 0
        self.factor = self.sent = self.delivered = 0.0
        self.fleet_cpu = self.broker_cpu = self.counter_cpu = 0.0
        self.kb_per_unit = self.lag = self.lag_max = 0.0

    def line(self) -> str:
        ratio = self.delivered / max(self.sent, 1e-9)
        step_us = self.fleet_cpu / max(self.factor * self.size, 1e-9) * 1e6
        return (
            f"  {self.size:>6,}  {self.processes:>5}  {self.connected:>9,}  {self.factor:>9.2f}"
            f"  {self.sent:>9.1f}  {self.delivered:>10.1f}  {ratio:>6.2f}"
            f"  {self.fleet_cpu * 100:>7.0f} %  {step_us:>7.0f}  {self.broker_cpu * 100:>6.0f} %"
            f"  {self.counter_cpu * 100:>5.0f} %  {self.kb_per_unit:>7.0f}"
            f"  {self.lag * 1000:>6.0f}  {self.lag_max * 1000:>6.0f}  {os.getloadavg()[0]:>5.2f}"
        )


async def measure(
    fleet: FleetProcesses, row: Row, seconds: float, warmup: float, received: list[int], broker: int
) -> None:
    runner = asyncio.create_task(fleet.run())
    await asyncio.sleep(warmup)
    received0 = received[0]
    pids = fleet.pids()
    fleet_cpu0 = sum(cpu_s(pid) for pid in pids)
    broker_cpu0, counter_cpu0, wall0 = cpu_s(broker), time.process_time(), time.monotonic()
    fleet.reset_window()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - wall0
    row.fleet_cpu = (sum(cpu_s(pid) for pid in pids) - fleet_cpu0) / wall
    row.broker_cpu = (cpu_s(broker) - broker_cpu0) / wall
    row.counter_cpu = (time.process_time() - counter_cpu0) / wall
    row.factor = fleet.rate("steps") / row.size
    row.sent = fleet.rate("published")
    row.delivered = (received[0] - received0) / wall
    row.lag, row.lag_max = fleet.lag_s()
    row.connected = fleet.connected()
    grown = sum(w.report["rss_kb"] - w.report["rss_start_kb"] for w in fleet.workers)
    row.kb_per_unit = grown / row.size
    if runner.done():
        runner.result()  # a worker died: say so
    runner.cancel()  # the units sign off: not counted
    await asyncio.gather(runner, return_exceptions=True)


def one_row(size: int, processes: int, seconds: float) -> Row:
    row = Row(size, processes)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        ids = tuple(f"KEN-M{i:05d}" for i in range(size))
        with contextlib.redirect_stdout(io.StringIO()):  # provision's report
            deployment = provision(Path(tmp) / "d", ids, port).directory
        broker = subprocess.Popen(
            [
                os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto"),
                "-c",
                str(deployment / "mosquitto.conf"),
            ],
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_listening(port, broker)
            gateway = tomllib.loads((deployment / "gateway.toml").read_text())["broker"]
            received = [0]
            sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-count")
            sub.username_pw_set(gateway["username"], gateway["password"])
            sub.tls_set(ca_certs=str(deployment / "ca.crt"), tls_version=ssl.PROTOCOL_TLS_CLIENT)
            sub.on_message = lambda c, u, m: received.__setitem__(0, received[0] + 1)
            sub.connect("127.0.0.1", port)
            sub.subscribe(topics.UPLINK_SUBSCRIPTION, qos=1)
            sub.loop_start()
            spread = min(20.0, size / 100)
            options = FleetOptions(deployment, units=size, connect_spread_s=spread)
            fleet = FleetProcesses(options, processes)
            asyncio.run(measure(fleet, row, seconds, spread + 10, received, broker.pid))
            sub.disconnect()
            sub.loop_stop()
            return row
        finally:
            broker.terminate()
            broker.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,4000,5000,6000")
    parser.add_argument(
        "--processes",
        default="1,auto",
        help="fleet processes to try at each size; auto: balise sim fleet's default",
    )
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    # Thousands of sockets here, in the workers and in mosquitto, which inherit the limit.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(
        f"fleet scale: {args.seconds:.0f} s per row; {os.cpu_count()} cores,"
        f" load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    print(
        "   units  procs  connected  real-time  pub msg/s  recv msg/s  deliv."
        "  fleet CPU  us/step  broker  count  KB/unit  lag ms  max ms   load"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        counts = []
        for text in args.processes.split(","):
            count = default_processes(size) if text == "auto" else int(text)
            if count not in counts:
                counts.append(count)
        for processes in counts:
            print(one_row(size, processes, args.seconds).line(), flush=True)
    print(f"  load at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
