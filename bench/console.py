"""The dispatcher console with thousands of live units, in Debian's Chromium.

    .venv/bin/python bench/console.py [--units 5000] [--baseline 50] [--seconds 20]

For each fleet size (the baseline first, measured in the same run): the real
mosquitto, a gateway process and a headless Chromium logged into the console.
A publisher moves every unit (a position every 5 s each, spread evenly) while
the page is measured:
- status message -> the unit's row on the board showing it: p50/p99 over a
  status change every 0.5 s (the page records the moment with a MutationObserver;
  page and publisher share this machine's clock);
- the page's frame time while all units move (requestAnimationFrame intervals):
  p50/p99/max.
Nothing is asserted: see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paho.mqtt import client as mqtt  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from bench.ingest import BENCH_PASSWORD, BENCH_USER, client, percentile  # noqa: E402
from protocol import codec, status, topics  # noqa: E402
from protocol.messages import Online, Position, StatusChange  # noqa: E402
from tests.conftest import free_port, provision  # noqa: E402

WATCH = """
window.__changes = [];
let shown = null;
new MutationObserver(() => {
  const row = document.querySelector('#board tr[data-unit="KEN-00000"] .chip .code');
  const code = row ? Number(row.textContent) : null;
  if (code !== shown) { shown = code; window.__changes.push([code, Date.now()]); }
}).observe(document.querySelector('#board tbody'), {childList: true, subtree: true});
window.__frames = [];
let last = performance.now();
function frame(t) { window.__frames.push(t - last); last = t; requestAnimationFrame(frame); }
requestAnimationFrame(frame);
"""


def measure(size: int, seconds: float) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        deployment = provision(Path(tmp) / "d", ("KEN-M01",), port).directory
        subprocess.run(
            ["mosquitto_passwd", "-b", str(deployment / "passwd"), BENCH_USER, BENCH_PASSWORD],
            check=True,
        )
        with (deployment / "acl").open("a") as acl:
            acl.write(f"\nuser {BENCH_USER}\ntopic write balise/v1/#\n")
        broker = subprocess.Popen(
            [
                os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto"),
                "-c",
                str(deployment / "mosquitto.conf"),
            ],
            stderr=subprocess.DEVNULL,
        )
        config = deployment / "gateway.toml"
        http = free_port()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "balise",
                "users",
                "add",
                "bench",
                "--role",
                "viewer",
                "--config",
                str(config),
            ],
            input="bench-password",
            text=True,
            check=True,
            capture_output=True,
        )
        gateway = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "balise",
                "gateway",
                "--config",
                str(config),
                "--http",
                f"127.0.0.1:{http}",
                "--log-level",
                "WARNING",
            ]
        )
        stop = threading.Event()
        changes: list[tuple[int, float]] = []
        try:
            time.sleep(2)
            ca = deployment / "ca.crt"
            pub = client("bench-console", ca, BENCH_USER, BENCH_PASSWORD)
            pub.connect("127.0.0.1", port)
            pub.loop_start()
            ids = [f"KEN-{i:05d}" for i in range(size)]
            seqs = dict.fromkeys(ids, 1)

            def send(message: Any) -> None:
                payload = codec.encode(message)
                topic = topics.topic(message.unit, message.KIND)
                while pub.publish(topic, payload, qos=1).rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                    time.sleep(0.005)  # paho's queue is full: wait for PUBACKs

            now = int(time.time() * 1000)
            for unit in ids:  # every unit online, available, placed
                send(Online(unit=unit, seq=1, t_ms=now, online=True))
                send(StatusChange(unit=unit, seq=2, t_ms=now, status=status.AVAILABLE))
                seqs[unit] = 3

            def mover() -> None:
                i = 0
                while not stop.is_set():
                    started = time.monotonic()
                    for unit in ids[i % 5 :: 5]:  # a fifth of the units each second
                        seq = seqs[unit]
                        seqs[unit] = seq + 1
                        k = int(unit[4:])
                        send(
                            Position(
                                unit=unit,
                                seq=seq,
                                t_ms=int(time.time() * 1000),
                                lat=34.22 + (k % 100) * 8e-4 + (seq % 50) * 1e-4,
                                lon=-6.62 + (k // 100) * 1.6e-3,
                                speed_mps=8.0,
                                heading_deg=0.0,
                                hdop=0.9,
                                fix=3,
                            )
                        )
                    i += 1
                    stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=shutil.which("chromium") or "/usr/bin/chromium", headless=True
                )
                page = browser.new_page(viewport={"width": 1920, "height": 1080})
                page.goto(f"http://127.0.0.1:{http}/")
                page.fill("#login-user", "bench")
                page.fill("#login-password", "bench-password")
                page.click("#login-form button[type=submit]")
                page.wait_for_function(
                    f"document.getElementById('counts').textContent.startsWith('{size} units')",
                    timeout=120_000,
                )
                threading.Thread(target=mover, daemon=True).start()
                time.sleep(3)
                page.evaluate(WATCH)
                codes = [status.ON_SCENE, status.BUSY, status.EN_ROUTE, status.AVAILABLE]
                deadline = time.monotonic() + seconds
                n = 0
                while time.monotonic() < deadline:
                    code = codes[n % len(codes)]
                    seq = seqs["KEN-00000"]
                    seqs["KEN-00000"] = seq + 1
                    sent = time.time() * 1000
                    send(StatusChange(unit="KEN-00000", seq=seq, t_ms=int(sent), status=code))
                    changes.append((code, sent))
                    n += 1
                    time.sleep(0.5)
                time.sleep(2)
                seen = page.evaluate("window.__changes")
                frames = page.evaluate("window.__frames.slice(10)")
                browser.close()
            stop.set()
            pub.loop_stop()
        finally:
            stop.set()
            gateway.terminate()
            gateway.wait(20)
            broker.terminate()
            broker.wait(10)
    latencies = []
    shown = [(int(c), at) for c, at in seen if c is not None]
    for code, sent in changes:
        after = [at for c, at in shown if c == code and at >= sent]
        if after:
            latencies.append(min(after) - sent)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    f50, f99 = percentile(frames, 50), percentile(frames, 99)
    return (
        f"  {size:>6,} units: status -> row p50 {p50:6.0f} ms, p99 {p99:6.0f} ms "
        f"({len(latencies)}/{len(changes)} seen); frame time p50 {f50:5.1f} ms, "
        f"p99 {f99:6.1f} ms, max {max(frames or [0]):6.0f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=5000)
    parser.add_argument("--baseline", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"console bench: {args.seconds:.0f} s per size; {os.cpu_count()} cores, load {load:.2f}")
    print(measure(args.baseline, args.seconds) + "   (baseline)", flush=True)
    print(measure(args.units, args.seconds), flush=True)
    print(f"  load at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
