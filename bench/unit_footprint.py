"""What a balise unit costs, each figure beside a baseline measured in the same run.

Memory and CPU on the Pi, bytes on the air, and how far off the command room's picture is:

1. The Pi runtime as a real process (`python -m balise unit`, paho link, serial GPS on a
   pseudo-terminal fed GGA+RMC at 1 Hz from a moving track) against a real mosquitto: RSS
   and CPU time from /proc, CPU extrapolated per hour. Baselines: idle interpreters that
   imported nothing, paho-mqtt and the protocol, the unit's modules, and everything that
   `balise unit` imports -- so the reader sees what running adds.
2. The reporting policy on the wire: the real firmware core over a 1-hour synthetic city
   drive (and over each real recording of shared/nmea/ as given), counting MQTT bytes and
   the command room's error at every fix, next to a reporter that sends a position every
   5 s. Pure computation.

    .venv/bin/python bench/unit_footprint.py            # about 3 minutes
    .venv/bin/python bench/unit_footprint.py --quick    # about 40 seconds

No figure is asserted: the machine is shared and noisy. docs/benchmarks.md has the figures
and how to read them.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from bench import drives, live, replay
from firmware.core import reporting
from protocol import codec

GOAL_RSS_MB = 30
GOAL_CORE_PERCENT = 2.0
GOAL_BYTES_PER_HOUR = 30 * 1024
GOAL_ERROR_M = 25.0
FIXED_PERIOD_S = 5.0
DRIVE_S = 3600
FEED_S, WARMUP_S = 180, 15
QUICK_FEED_S, QUICK_WARMUP_S = 30, 5
OTHER_SEEDS = 4
# Settings tried beside the defaults, on the same drive: what the trade-off looks like.
VARIANTS = (
    ("threshold 15 m", {"threshold_m": 15.0}),
    ("threshold 50 m", {"threshold_m": 50.0}),
    ("health every 300 s", {"health_interval_s": 300.0}),
    ("threshold 50 m, health 300 s", {"threshold_m": 50.0, "health_interval_s": 300.0}),
    ("every health in full", {"health_full_every": 1}),
    ("altitude in every pos", {"report_altitude": True}),
)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """Columns padded to fit; the first left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return indent + "  ".join([first, *rest]).rstrip()

    rule = indent + "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *[line(row) for row in rows]])


def num(value: float, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def kib(value: float) -> str:
    return num(value / 1024, 1)


# -- the header ----------------------------------------------------------------------------


def header(quick: bool) -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            f"balise unit footprint{' (--quick)' if quick else ''} -- {now}",
            f"host: {platform.machine()}, {cpu}, {os.cpu_count()} cores; load {load}; "
            f"Python {platform.python_version()}, paho-mqtt {metadata.version('paho-mqtt')}",
            f"goals: RSS <= {GOAL_RSS_MB} MB and <= {GOAL_CORE_PERCENT:g} % of a core at 1 Hz "
            f"GPS; <= {GOAL_BYTES_PER_HOUR // 1024} KB/h on the wire with the command room "
            f"off by <= {GOAL_ERROR_M:g} m (KB = 1024 bytes, MB = MiB)",
        ]
    )


# -- 2. the wire ---------------------------------------------------------------------------


def settings_line(config: Any) -> str:
    """The core's settings (a firmware.core.config.UnitConfig: plain class, untyped)."""
    return (
        f"unit settings: threshold {config.threshold_m:g} m, heartbeat "
        f"{config.heartbeat_moving_s:g} s moving / {config.heartbeat_parked_s:g} s parked, "
        f"min interval {config.min_interval_s:g} s, max HDOP {config.max_hdop:g}, health every "
        f"{config.health_interval_s:g} s; MQTT keepalive {replay.KEEPALIVE_SECONDS} s"
    )


def wire_rows(reporters: Sequence[replay.Reporter]) -> list[list[str]]:
    rows = []
    for reporter in reporters:
        wire = reporter.wire
        per_hour = 3600 / reporter.duration_s
        pos = wire.messages["pos"]
        others = sum(wire.messages.values()) - pos
        pos_bytes = wire.mqtt_bytes["pos"]
        rows.append(
            [
                reporter.name,
                num(pos * per_hour, 0),
                num(others * per_hour, 0),
                num(pos_bytes * per_hour, 0),
                num((wire.total() - pos_bytes) * per_hour, 0),
                num(wire.total() * per_hour, 0),
                kib(wire.total() * per_hour),
                num(wire.tls_bytes() * per_hour, 0),
                num(wire.air_bytes() * per_hour, 0),
            ]
        )
    return rows


WIRE_HEADERS = (
    "reporter",
    "pos/h",
    "other/h",
    "pos B/h",
    "other B/h",
    "MQTT B/h",
    "KB/h",
    "+TLS B/h",
    "+TCP/IP B/h",
)


def error_rows(reporters: Sequence[replay.Reporter], truth: bool) -> list[list[str]]:
    rows = []
    for reporter in reporters:
        errors = reporter.errors
        series = [errors.in_flight, errors.landed]
        if truth:
            series += [errors.in_flight_truth, errors.landed_truth]
        cells = [reporter.name]
        for values in series:
            cells += [num(max(values, default=math.nan)), num(replay.percentile(values, 0.95))]
        rows.append(cells)
    return rows


def wire_section(drive_s: int, seed: int) -> tuple[str, list[drives.Sample]]:
    samples, summary = drives.city_drive(drive_s, seed)
    unit, others, config = replay.replay_unit(samples)
    first_seq = codec.decode(others[0][1], others[0][2]).seq
    fixed, held = replay.replay_fixed(samples, FIXED_PERIOD_S, others, first_seq)
    ratio = fixed.wire.total() / unit.wire.total()
    reasons = ", ".join(f"{name} {count}" for name, count in unit.reasons.most_common())
    lines = [
        "== 2. Reporting on the wire (pure computation: the real firmware core, no broker) ==",
        settings_line(config),
        "drive: " + summary.describe(),
        "  SYNTHETIC: generated by bench/drives.py (street grid, turns, stops at junctions, "
        "0-20 m/s,",
        "  10 min parked on scene, GPS noise of a 1 Hz receiver); no recording in "
        "shared/nmea/ is a drive.",
        "",
        "bytes per hour. MQTT: PUBLISH packets + PUBACKs + PINGREQ/PINGRESP. Estimates: +TLS "
        f"adds a {replay.TLS_RECORD_BYTES}-B TLS 1.3 record",
        f"per packet ({replay.TLS12_RECORD_BYTES} B with TLS 1.2); +TCP/IP adds "
        f"{replay.TCP_IP_BYTES} B of IPv4+TCP per packet and a bare ACK per exchange.",
        table(WIRE_HEADERS, wire_rows([unit, fixed])),
        f"  the fixed {FIXED_PERIOD_S:g}-s reporter sends {ratio:.1f}x the MQTT bytes; "
        f"balise positions by reason: {reasons}",
        "",
        "command room's error (m) at every fix: 'in flight' = drawn from the earlier reports "
        "while this",
        "fix's report is on its way (the worst moment); 'landed' = after it arrived. "
        "p95 = 95th percentile.",
        table(
            (
                "reporter",
                "in flight max",
                "p95",
                "landed max",
                "p95",
                "vs truth: in flight max",
                "p95",
                "landed max",
                "p95",
            ),
            error_rows([unit, fixed, held], truth=True),
        ),
        "  'vs truth' compares with the generated true track, so it includes the receiver's "
        "own error.",
        "",
        "the same drive with other settings (balise only):",
        table(
            ("settings", "pos/h", "MQTT B/h", "KB/h", "in flight max", "p95", "landed max"),
            variant_rows(samples, unit),
        ),
        "",
        "other seeds of the same generator, default settings (how much the drive matters):",
        table(
            (
                "drive",
                "km",
                "stops",
                "turns",
                "balise pos/h",
                "KB/h",
                "in flight max",
                "p95",
                "landed max",
                "fixed 5 s KB/h",
            ),
            seed_rows(seed, drive_s),
        ),
        "",
        recordings_section(),
    ]
    return "\n".join(lines), samples


def seed_rows(seed: int, drive_s: int) -> list[list[str]]:
    rows = []
    for other in range(seed + 1, seed + 1 + OTHER_SEEDS):
        samples, summary = drives.city_drive(drive_s, other)
        unit, others, _ = replay.replay_unit(samples)
        first_seq = codec.decode(others[0][1], others[0][2]).seq
        fixed, _ = replay.replay_fixed(samples, FIXED_PERIOD_S, others, first_seq)
        per_hour = 3600 / unit.duration_s
        rows.append(
            [
                f"seed {other}",
                num(summary.distance_m / 1000),
                str(summary.stops),
                str(summary.turns),
                num(unit.wire.messages["pos"] * per_hour, 0),
                kib(unit.wire.total() * per_hour),
                num(max(unit.errors.in_flight)),
                num(replay.percentile(unit.errors.in_flight, 0.95)),
                num(max(unit.errors.landed)),
                kib(fixed.wire.total() * per_hour),
            ]
        )
    return rows


def without_braking(samples: list[drives.Sample]) -> replay.Reporter:
    """The unit as before `ax`: reports carry no braking, so the room draws constant velocity."""
    saved = reporting.BRAKING_MIN_MPS2
    reporting.BRAKING_MIN_MPS2 = math.inf
    try:
        return replay.replay_unit(samples)[0]
    finally:
        reporting.BRAKING_MIN_MPS2 = saved


def variant_rows(samples: list[drives.Sample], default: replay.Reporter) -> list[list[str]]:
    runs = [("defaults", default)]
    for name, settings in VARIANTS:
        runs.append((name, replay.replay_unit(samples, settings)[0]))
    runs.append(("no braking in reports (ax)", without_braking(samples)))
    rows = []
    for name, reporter in runs:
        per_hour = 3600 / reporter.duration_s
        errors = reporter.errors
        rows.append(
            [
                name,
                num(reporter.wire.messages["pos"] * per_hour, 0),
                num(reporter.wire.total() * per_hour, 0),
                kib(reporter.wire.total() * per_hour),
                num(max(errors.in_flight)),
                num(replay.percentile(errors.in_flight, 0.95)),
                num(max(errors.landed)),
            ]
        )
    return rows


def recordings_section() -> str:
    paths = drives.recordings()
    if not paths:
        return f"real recordings: none found in {drives.NMEA_DIR}"
    rows = []
    for path in paths:
        samples, summary = drives.recording(path)
        unit, others, _ = replay.replay_unit(samples)
        first_seq = codec.decode(others[0][1], others[0][2]).seq
        fixed, held = replay.replay_fixed(samples, FIXED_PERIOD_S, others, first_seq)
        rows.append(
            [
                path.name,
                str(summary.epochs),
                num(summary.duration_s, 0),
                num(summary.distance_m, 0),
                num(summary.max_speed_mps),
                f"{unit.wire.messages['pos']} / {unit.wire.mqtt_bytes['pos']}",
                f"{fixed.wire.messages['pos']} / {fixed.wire.mqtt_bytes['pos']}",
                num(max(unit.errors.in_flight, default=math.nan)),
                num(max(fixed.errors.in_flight, default=math.nan)),
                num(max(held.errors.in_flight, default=math.nan)),
            ]
        )
    return "\n".join(
        [
            "the real recordings of shared/nmea/, as given (gpsd's test captures: seconds "
            "long, mostly",
            "standing still; absolute counts, too short for per-hour figures; errors against "
            "the fixes;",
            "humminbird-M37's receiver time steps back 13 s: reports stamped after that look "
            "13 s old to the room):",
            table(
                (
                    "recording",
                    "epochs",
                    "s",
                    "path m",
                    "top m/s",
                    "balise pos / B",
                    "fixed 5 s pos / B",
                    "max err balise",
                    "fixed 5 s",
                    "hold",
                ),
                rows,
            ),
        ]
    )


# -- 1. the process ------------------------------------------------------------------------


def process_rows(result: live.LiveResult) -> list[list[str]]:
    rows = []
    for figures in [*result.baselines, result.unit]:
        rows.append(
            [
                figures.name,
                num(figures.last.rss_kb / 1024),
                num(figures.last.hwm_kb / 1024),
                str(figures.last.threads),
                num(figures.startup_cpu_s, 2),
                num(figures.cpu_s, 2),
                num(figures.cpu_s_per_hour, 1),
                num(figures.core_percent, 2),
            ]
        )
    return rows


def process_section(result: live.LiveResult, samples: list[drives.Sample]) -> str:
    unit = result.unit
    first, end = result.window_fix_range
    model, _, _ = replay.replay_unit(samples[: result.fixes_written])
    record = replay.TLS_RECORD_BYTES if "TLSv1.3" in result.tls else replay.TLS12_RECORD_BYTES
    model_mqtt, model_tls = model.wire.between(first * 1000, end * 1000, record)
    window_s = unit.window_s
    up, down = result.relay_window
    before_up, before_down = result.relay_before_first_fix
    received = ", ".join(f"{kind} {count}" for kind, count in sorted(result.received.items()))
    model_pos = model.wire.messages["pos"]
    baseline_cli = result.baselines[-1].last.rss_kb
    baseline_modules = result.baselines[-2].last.rss_kb
    lines = [
        "== 1. The Pi runtime as a process (real mosquitto, serial GPS on a pty at 1 Hz) ==",
        f"{result.fixes_written} epochs of GGA+RMC from the start of the same synthetic drive; "
        f"measured over {window_s:.0f} s",
        f"(the first {first} s after the first fix left out: start-up, TLS, first reports). "
        "The baselines",
        "started with the unit and idled in time.sleep() through the same window.",
        table(
            (
                "process",
                "RSS MB",
                "peak MB",
                "threads",
                "CPU s before",
                "CPU s in window",
                "CPU s/h",
                "% of a core",
            ),
            process_rows(result),
        ),
        f"  the unit's RSS moved by {unit.rss_growth_kb:+d} kB over the window; it needs "
        f"{(unit.last.rss_kb - result.baselines[0].last.rss_kb) / 1024:.1f} MB over a bare "
        f"interpreter, of which {(baseline_cli - baseline_modules) / 1024:.1f} MB is what the "
        "CLI imports beyond the unit's modules:",
        "    " + " ".join(result.cli_extras),
        f"  the gateway's seat received from the unit: {received} "
        f"(the model expects {model_pos} pos for these fixes)",
        f"  through the counting relay ({result.tls}): connection set-up before the first fix "
        f"{before_up:,} B up / {before_down:,} B down;",
        f"  in the window {up:,} B up / {down:,} B down = "
        f"{(up + down) * 3600 / window_s:,.0f} B/h of TLS stream; the model for the same "
        f"fixes: {model_mqtt * 3600 / window_s:,.0f} B/h MQTT, "
        f"{model_tls * 3600 / window_s:,.0f} B/h with {record}-B TLS records",
        f"  broker: {result.broker_version}; the unit exited with status {result.unit_exit}",
    ]
    problems = [
        line
        for line in result.unit_log.splitlines()
        if " WARNING " in line or " ERROR " in line or "Traceback" in line
    ]
    if problems:
        lines.append("  the unit logged:")
        lines += ["    " + line for line in problems[:10]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"feed the live unit {QUICK_FEED_S} s, not {FEED_S}"
    )
    parser.add_argument("--feed-seconds", type=int, help="how long to feed the live unit")
    parser.add_argument("--seed", type=int, default=1, help="the synthetic drive's seed")
    parser.add_argument("--wire-only", action="store_true", help="skip the live process run")
    args = parser.parse_args(argv)
    feed_s, warmup_s = (QUICK_FEED_S, QUICK_WARMUP_S) if args.quick else (FEED_S, WARMUP_S)
    feed_s = args.feed_seconds or feed_s
    warmup_s = min(warmup_s, feed_s // 4)
    print(header(args.quick), flush=True)
    wire_text, samples = wire_section(DRIVE_S, args.seed)
    if not args.wire_only:
        result = live.run(samples, feed_s, warmup_s)
        print()
        print(process_section(result, samples))
    print()
    print(wire_text)
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"\nload at the end: {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
