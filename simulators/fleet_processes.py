"""One fleet over several processes: `balise sim fleet --processes K`.

One asyncio loop runs on one core; thousands of units outgrow it. The parent
splits the deployment's units into K contiguous shares and runs each share as
a worker, a subprocess of the same command:

    python -m balise sim fleet --deployment DIR --first-unit S --units C --worker ...

Every unit's behaviour is seeded by the fleet's seed and its own id, and every
worker builds the same street map, so a unit does what it would do in one
process. A worker writes one JSON line of counters a second to its stdout
(`worker_report`); it stops, its units signing off, on SIGINT or SIGTERM, and
when its stdin closes: the parent is gone, even killed with SIGKILL, so no
worker outlives it. The parent adds the counters up for one progress line,
stops every worker on Ctrl-C or SIGTERM (SIGKILL for one that has not gone
within WORKER_STOP_S), and when a worker exits before it was asked to, stops
the others and raises `WorkerFailed` naming it, its units and how it ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulators.errors import SimulatorError
from simulators.fleet import Fleet, FleetOptions, FleetStats, unit_files

log = logging.getLogger(__name__)

UNITS_PER_PROCESS = 1000  # above this a fleet gets a second process, up to one per core
WORKER_STOP_S = 10.0  # a worker's units sign off in well under a second
REPORT_FIELDS = ("published", "acknowledged", "connects", "commands")


class WorkerFailed(SimulatorError):
    """A worker exited (or could not start) while the fleet was running."""


def default_processes(units: int, cores: int | None = None) -> int:
    """One process for a small fleet; for a large one a share per core."""
    cores = cores or os.cpu_count() or 1
    return max(1, min(cores, math.ceil(units / UNITS_PER_PROCESS)))


def shares(count: int, processes: int) -> list[tuple[int, int]]:
    """(first unit, how many) for each of `processes` contiguous, near-equal shares."""
    if processes < 1:
        raise SimulatorError(f"--processes {processes}: at least 1")
    if processes > count:
        raise SimulatorError(f"--processes {processes}: more processes than the {count} units")
    bounds = [count * i // processes for i in range(processes + 1)]
    return [(bounds[i], bounds[i + 1] - bounds[i]) for i in range(processes)]


# -- the worker's side ---------------------------------------------------------------


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def worker_report(fleet: Fleet, rss_start_kb: int) -> dict[str, Any]:
    """The counters a worker sends each second; lag_max_s is the worst since the last one."""
    units = fleet.units
    report: dict[str, Any] = {name: getattr(fleet.stats, name) for name in REPORT_FIELDS}
    report.update(
        units=len(units),
        connected=fleet.connected(),
        backlog=fleet.backlog(),
        steps=sum(u.steps for u in units),
        lag_s=sum(u.lag_s for u in units) / max(1, len(units)),
        lag_max_s=max((u.lag_max_s for u in units), default=0.0),
        rss_kb=rss_kb(),
        rss_start_kb=rss_start_kb,
        t=time.monotonic(),  # CLOCK_MONOTONIC: the same clock in every process of the machine
    )
    for unit in units:
        unit.lag_max_s = 0.0
    return report


async def run_worker(options: FleetOptions, duration_s: float | None) -> Fleet:
    """A share of a fleet, reporting on stdout, until a signal, stdin's end, or the duration."""
    loop = asyncio.get_running_loop()
    rss_start = rss_kb()
    fleet = Fleet(options, loop)

    def report(fleet: Fleet) -> None:
        try:
            sys.stdout.write(json.dumps(worker_report(fleet, rss_start)) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:  # the parent is gone: stop
            runner.cancel()

    def parent_gone() -> None:
        if not os.read(sys.stdin.fileno(), 4096):
            loop.remove_reader(sys.stdin.fileno())
            runner.cancel()

    runner = asyncio.create_task(fleet.run(duration_s, report))
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, runner.cancel)
    loop.add_reader(sys.stdin.fileno(), parent_gone)
    with contextlib.suppress(asyncio.CancelledError):
        await runner
    return fleet


def worker_argv(options: FleetOptions, first: int, count: int) -> list[str]:
    """The command line of a worker that runs units first..first+count-1 of `options`."""
    argv = [sys.executable, "-m", "balise", "sim", "fleet", "--worker"]
    argv += ["--deployment", str(options.deployment), "--first-unit", str(first)]
    argv += ["--units", str(count), "--seed", str(options.seed)]
    argv += ["--sos-per-hour", repr(options.sos_per_hour), "--latency", repr(options.latency_s)]
    argv += ["--connect-spread", repr(options.connect_spread_s)]
    argv += ["--on-scene", ",".join(repr(s) for s in options.on_scene_s)]
    argv += ["--center", ",".join(repr(c) for c in options.center)]
    for flag, zones in (("--dead-zone", options.dead_zones), ("--tunnel", options.tunnels)):
        for zone in zones:
            argv += [flag, f"{zone.lat!r},{zone.lon!r},{zone.radius_m!r}"]
    return argv


# -- the parent's side ---------------------------------------------------------------


@dataclass
class Worker:
    number: int  # 1..K
    of: int
    first: int
    count: int
    names: tuple[str, str]  # the first and last unit's id
    process: asyncio.subprocess.Process | None = None
    report: dict[str, Any] = field(default_factory=dict)  # the latest
    # Over the reports since reset_window(): the first, the sum of the units' mean lag, the
    # worst lag.
    first_report: dict[str, Any] = field(default_factory=dict)
    reports: int = 0
    lag_total_s: float = 0.0
    lag_max_s: float = 0.0

    def __str__(self) -> str:
        pid = f", pid {self.process.pid}" if self.process else ""
        return (
            f"fleet worker {self.number} of {self.of} (units {self.names[0]}..{self.names[1]}{pid})"
        )

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


def _how_it_ended(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
        return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


class FleetProcesses:
    """K worker processes running one fleet; counters added up as a Fleet's are."""

    def __init__(self, options: FleetOptions, processes: int) -> None:
        self.options = options
        names = [
            path.stem for path in unit_files(options.deployment, options.units, options.first_unit)
        ]
        self.workers = [
            Worker(
                n + 1,
                processes,
                options.first_unit + first,
                count,
                (names[first], names[first + count - 1]),
            )
            for n, (first, count) in enumerate(shares(len(names), processes))
        ]
        self.stopping = False
        self.started = time.monotonic()
        self._failed: asyncio.Future[Worker] | None = None

    # the view progress_line and the bench read
    @property
    def size(self) -> int:
        return sum(w.count for w in self.workers)

    @property
    def stats(self) -> FleetStats:
        totals = {name: self.total(name) for name in REPORT_FIELDS}
        return FleetStats(**totals, started=self.started)

    def total(self, name: str) -> int:
        return sum(w.report.get(name, 0) for w in self.workers)

    def connected(self) -> int:
        return self.total("connected")

    def backlog(self) -> int:
        return self.total("backlog")

    def reset_window(self) -> None:
        for worker in self.workers:
            worker.reports, worker.lag_total_s, worker.lag_max_s = 0, 0.0, 0.0

    def rate(self, name: str) -> float:
        """A counter's growth per second over the window, timed by the workers' own reports."""
        rate = 0.0
        for worker in self.workers:
            first, last = worker.first_report, worker.report
            if worker.reports > 1:
                rate += (last[name] - first[name]) / (last["t"] - first["t"])
        return rate

    def lag_s(self) -> tuple[float, float]:
        """(mean, worst) lag of a unit's step over the reports since reset_window()."""
        mean = sum(w.count * w.lag_total_s / max(1, w.reports) for w in self.workers) / self.size
        return mean, max(w.lag_max_s for w in self.workers)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers if w.process is not None]

    async def run(self, duration_s: float | None = None, progress: Any = None) -> None:
        """Start the workers, call `progress(self)` each second, stop them all at the end."""
        loop = asyncio.get_running_loop()
        self._failed = loop.create_future()
        self.started = time.monotonic()
        readers = []
        try:
            for worker in self.workers:
                # No --duration: the parent ends the run, so any worker's exit is news.
                argv = worker_argv(self.options, worker.first, worker.count)
                worker.process = await asyncio.create_subprocess_exec(
                    *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
                )
                readers.append(asyncio.create_task(self._read(worker), name=str(worker)))
            while duration_s is None or time.monotonic() - self.started < duration_s:
                done, _ = await asyncio.wait([self._failed], timeout=1.0)
                if done:
                    worker = self._failed.result()
                    assert worker.process is not None and worker.process.returncode is not None
                    raise WorkerFailed(f"{worker} {_how_it_ended(worker.process.returncode)}")
                if progress is not None:
                    progress(self)
        finally:
            self.stopping = True
            await self._stop_all()
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    async def _read(self, worker: Worker) -> None:
        assert worker.process is not None and worker.process.stdout is not None
        async for line in worker.process.stdout:
            try:
                report = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s: not a report: %r", worker, line[:200])
                continue
            worker.report = report
            if not worker.reports:
                worker.first_report = report
            worker.reports += 1
            worker.lag_total_s += report["lag_s"]
            worker.lag_max_s = max(worker.lag_max_s, report["lag_max_s"])
        await worker.process.wait()
        if not self.stopping and self._failed is not None and not self._failed.done():
            self._failed.set_result(worker)

    async def _stop_all(self) -> None:
        running = [w.process for w in self.workers if w.process and w.process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        try:
            await asyncio.wait_for(
                asyncio.gather(*(p.wait() for p in running)), timeout=WORKER_STOP_S
            )
        except TimeoutError:
            for process in running:
                if process.returncode is None:
                    log.warning("fleet worker pid %d did not stop: killed", process.pid)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.gather(*(p.wait() for p in running))
        for worker in self.workers:  # the pipes: closed, not left to the garbage collector
            if worker.process is not None and worker.process.stdin is not None:
                worker.process.stdin.close()
