"""Put a provisioning plan on disk so that a failure leaves nothing half-written.

A new deployment is built in a temporary sibling directory and renamed into place. In an
existing one, every changed file is first written to a temporary name beside it (mode 0600
from the start, so a secret is never readable by others, even briefly), and only when all of
them are written are they renamed over the old ones; if anything fails, the temporary files
and what this run created are removed and files already replaced get their old content back.
Files whose content and mode are already right are not touched, so keys stay as they are.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import ProvisionError
from gateway.provision.deployment import Plan, PlannedFile

DEPLOYMENT_DIR_MODE = 0o755  # the broker's user must be able to reach its files


@dataclass(frozen=True)
class _Staged:
    final: Path
    temp: Path
    previous: bytes | None
    previous_stat: os.stat_result | None


def write_plan(plan: Plan) -> tuple[str, ...]:
    """Write `plan`; return the paths (relative to its directory) that were written."""
    if plan.directory.exists():
        return _write_in_place(plan)
    return _write_new(plan)


def _write_new(plan: Plan) -> tuple[str, ...]:
    directory = plan.directory
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    except OSError as exc:
        raise ProvisionError(f"cannot create {directory}: {exc.strerror}") from exc
    try:
        for planned_dir in plan.dirs:
            (staging / planned_dir.path).mkdir()
            _set_mode(staging / planned_dir.path, planned_dir, plan.broker_owner)
        for planned in plan.files:
            (staging / planned.path).write_bytes(planned.content)
            _set_mode(staging / planned.path, planned, plan.broker_owner)
        staging.chmod(DEPLOYMENT_DIR_MODE)
        staging.rename(directory)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise ProvisionError(f"cannot write {directory}: {exc.strerror}") from exc
        raise
    return tuple(planned.path for planned in plan.files)


def _write_in_place(plan: Plan) -> tuple[str, ...]:
    created_dirs: list[Path] = []
    staged: list[_Staged] = []
    committed: list[_Staged] = []
    current = plan.directory
    try:
        for planned_dir in plan.dirs:
            current = plan.directory / planned_dir.path
            if not current.is_dir():
                current.mkdir()
                created_dirs.append(current)
            _set_mode(current, planned_dir, plan.broker_owner)
        for planned in plan.files:
            current = plan.directory / planned.path
            entry = _stage(current, planned, plan.broker_owner)
            if entry is not None:
                staged.append(entry)
        for entry in staged:
            current = entry.final
            os.replace(entry.temp, entry.final)
            committed.append(entry)
        _fsync_dirs({entry.final.parent for entry in committed})
    except BaseException as exc:
        _roll_back(staged, committed, created_dirs)
        if isinstance(exc, OSError):
            raise ProvisionError(f"cannot write {current}: {exc.strerror}") from exc
        raise
    return tuple(str(entry.final.relative_to(plan.directory)) for entry in committed)


def _stage(final: Path, planned: PlannedFile, owner: tuple[int, int] | None) -> _Staged | None:
    """Write `planned` beside `final` under a temporary name, unless `final` is already right."""
    try:
        previous_stat: os.stat_result | None = final.stat()
        previous: bytes | None = final.read_bytes()
    except FileNotFoundError:
        previous_stat, previous = None, None
    wanted_owner = owner if planned.broker_reads else None
    if previous == planned.content and _stat_matches(previous_stat, planned.mode, wanted_owner):
        return None
    temp = _write_temp(final, planned.content)
    try:
        _set_mode(temp, planned, owner)
    except BaseException:
        temp.unlink()
        raise
    return _Staged(final, temp, previous, previous_stat)


def _write_temp(final: Path, content: bytes) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def _roll_back(staged: list[_Staged], committed: list[_Staged], created: list[Path]) -> None:
    for entry in staged:
        if entry not in committed:
            entry.temp.unlink(missing_ok=True)
    for entry in reversed(committed):
        if entry.previous is None or entry.previous_stat is None:
            entry.final.unlink(missing_ok=True)
            continue
        temp = _write_temp(entry.final, entry.previous)
        os.chmod(temp, stat.S_IMODE(entry.previous_stat.st_mode))
        if os.geteuid() == 0:
            os.chown(temp, entry.previous_stat.st_uid, entry.previous_stat.st_gid)
        os.replace(temp, entry.final)
    for directory in reversed(created):
        shutil.rmtree(directory, ignore_errors=True)


def _set_mode(path: Path, planned: PlannedFile, owner: tuple[int, int] | None) -> None:
    os.chmod(path, planned.mode)
    if planned.broker_reads and owner is not None:
        os.chown(path, *owner)


def _stat_matches(st: os.stat_result | None, mode: int, owner: tuple[int, int] | None) -> bool:
    if st is None or stat.S_IMODE(st.st_mode) != mode:
        return False
    return owner is None or (st.st_uid, st.st_gid) == owner


def _fsync_dirs(directories: set[Path]) -> None:
    """Make the renames durable, so a power cut does not bring old files back."""
    for directory in directories:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
