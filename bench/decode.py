"""What the bulk lane's worker spends on each position besides MQTT: decode, records, pickle.

    .venv/bin/python bench/decode.py [--messages 500] [--repeat 9]

The worker process (gateway/bulk.py) reads each message with paho, then decodes
and validates it with protocol/ (`gateway.ingest.Decoder`: the codec, the future
time check, a `Record`), and pickles each batch of decoded records to the
gateway's process, which unpickles it. This times each step on a batch of
position payloads such as units send (10,000 unit ids round robin, as
bench/ingest.py publishes), as the best of `--repeat` runs, beside a baseline
measured in the same run: `json.loads` of the same payloads, the least any
JSON decoder must do. Pure computation: no broker, no disk. Nothing is
asserted: see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import bench_position  # noqa: E402
from gateway.ingest import Decoder, Incoming  # noqa: E402
from protocol import codec, topics  # noqa: E402

T0_MS = 1_764_979_200_000


def batch(count: int) -> list[Incoming]:
    """`count` position messages as the worker receives them."""
    received_ms = int(time.time() * 1000)
    incoming = []
    for index in range(count):
        unit = f"KEN-{index % 10_000:05d}"
        payload = codec.encode(bench_position(unit, index, T0_MS + index * 1000))
        incoming.append(Incoming(topics.topic(unit, "pos"), payload, received_ms, index))
    return incoming


def per_message_us(work: Callable[[], object], messages: int, repeat: int) -> float:
    """Best of `repeat` runs of `work` (which handles `messages` messages), in µs a message."""
    return min(timeit.repeat(work, number=1, repeat=repeat)) / messages * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500, help="one batch, as the worker's")
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    incoming = batch(args.messages)
    decoder = Decoder()
    decoded = decoder.decode(incoming)
    pickled = pickle.dumps(decoded, protocol=pickle.HIGHEST_PROTOCOL)
    n, repeat = args.messages, args.repeat
    rows = [
        ("json.loads (baseline)", lambda: [json.loads(m.payload) for m in incoming]),
        ("codec.decode", lambda: [codec.decode(m.topic, m.payload) for m in incoming]),
        ("Decoder.decode (+ records)", lambda: decoder.decode(incoming)),
        ("pickle.dumps of the batch", lambda: pickle.dumps(decoded, pickle.HIGHEST_PROTOCOL)),
        ("pickle.loads of the batch", lambda: pickle.loads(pickled)),
    ]
    print(
        f"decode bench: {n} positions ({len(incoming[0].payload)} B each), best of {repeat}; "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; Python {sys.version.split()[0]}"
    )
    baseline = 0.0
    for name, work in rows:
        us = per_message_us(work, n, repeat)
        baseline = baseline or us
        print(f"  {name:<30} {us:6.2f} µs/message  {us / baseline:5.1f}x json.loads")
    print(f"  pickled batch: {len(pickled) / n:.0f} B/message")
    return 0


if __name__ == "__main__":
    sys.exit(main())
