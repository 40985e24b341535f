"""The largest simulated fleet this machine runs in real time.

    .venv/bin/python bench/fleet_scale.py [--sizes 100,500,1000,2000,5000] [--seconds 30]

For each size: a deployment with that many units, the real mosquitto (TLS), and
`balise sim fleet`'s Fleet in this process (every unit the real firmware core with
its own MQTT session), plus a bare subscriber counting what reaches the broker.
Printed per size: sessions connected; the real-time factor (simulated seconds the
units stepped / wall seconds: 1.00 is real time; the baseline is 1.00 by
definition of the wall clock measured in the same run); messages per second the
units published and the subscriber received (delivered / published); CPU of the
fleet process; RSS per unit. Nothing is asserted: see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
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
from simulators.fleet import Fleet, FleetOptions  # noqa: E402
from tests.conftest import free_port, provision  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def measure(
    fleet: Fleet, seconds: float, warmup: float, received: list[int]
) -> tuple[float, float, float, float, float, float]:
    """(real-time factor, published/s, received/s, CPU share, mean and max lag of a second)."""
    runner = asyncio.create_task(fleet.run())
    await asyncio.sleep(warmup)
    steps0 = sum(u.steps for u in fleet.units)
    sent0, received0 = fleet.stats.published, received[0]
    for unit in fleet.units:
        unit.lag_max_s = 0.0
    cpu0, wall0 = time.process_time(), time.monotonic()
    lags = []
    while time.monotonic() - wall0 < seconds:
        await asyncio.sleep(1.0)
        lags += [u.lag_s for u in fleet.units]
    wall = time.monotonic() - wall0
    steps = sum(u.steps for u in fleet.units) - steps0
    sent, got = fleet.stats.published - sent0, received[0] - received0
    cpu = time.process_time() - cpu0
    lag_max = max(u.lag_max_s for u in fleet.units)
    runner.cancel()  # the units sign off: not counted
    await asyncio.gather(runner, return_exceptions=True)
    factor = steps / (len(fleet.units) * wall)
    return factor, sent / wall, got / wall, cpu / wall, sum(lags) / len(lags), lag_max


def one_size(size: int, seconds: float) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        ids = tuple(f"KEN-M{i:05d}" for i in range(size))
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
            time.sleep(1)
            gateway = tomllib.loads((deployment / "gateway.toml").read_text())["broker"]
            received = [0]
            sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-count")
            sub.username_pw_set(gateway["username"], gateway["password"])
            sub.tls_set(ca_certs=str(deployment / "ca.crt"), tls_version=ssl.PROTOCOL_TLS_CLIENT)
            sub.on_message = lambda c, u, m: received.__setitem__(0, received[0] + 1)
            sub.connect("127.0.0.1", port)
            sub.subscribe(topics.UPLINK_SUBSCRIPTION, qos=1)
            sub.loop_start()
            options = FleetOptions(deployment, units=size, connect_spread_s=min(20.0, size / 100))
            rss_before = rss_mb()
            loop = asyncio.new_event_loop()
            fleet = Fleet(options, loop)
            warmup = options.connect_spread_s + 5
            factor, sent_rate, delivered, cpu, lag, lag_max = loop.run_until_complete(
                measure(fleet, seconds, warmup, received)
            )
            per_unit_kb = (rss_mb() - rss_before) * 1024 / size
            connected = fleet.stats.connects
            loop.close()
            sub.loop_stop()
            ratio = delivered / max(sent_rate, 1e-9)
            return (
                f"  {size:>6,}  {connected:>9,}  {factor:>9.2f}  {sent_rate:>9.1f}"
                f"  {delivered:>9.1f}  {ratio:>7.2f}  {cpu * 100:>6.0f} %  {per_unit_kb:>8.0f}"
                f"  {lag * 1000:>7.0f}  {lag_max * 1000:>7.0f}"
            )
        finally:
            broker.terminate()
            broker.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,500,1000,2000,5000")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    # Thousands of sockets here and in mosquitto, which inherits the limit.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    load = os.getloadavg()[0]
    print(
        f"fleet scale: {args.seconds:.0f} s per size; {os.cpu_count()} cores, load {load:.2f}",
        flush=True,
    )
    print(
        "   units  connects  real-time  pub msg/s  recv msg/s  deliv.  fleet CPU  KB/unit"
        "  lag ms  max ms"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        print(one_size(size, args.seconds), flush=True)
    print(f"  load at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
