"""Durable files for the core's state (sequence ceiling, outbox journal).

The core never opens a file itself: the runtime passes in a storage object,
`FileStorage(directory)` on a unit or `MemoryStorage()` in tests and
simulators. Four methods:

- `read(name)` -> bytes, or None when there is no such file;
- `replace(name, data)`: atomic -- after a power cut the file holds either the
  old or the new bytes, never a mix;
- `append(name, data, sync)`: `sync=True` returns only once the bytes are on
  the medium; `sync=False` leaves them to the OS (a power cut may lose them,
  or keep only a prefix: a torn tail);
- `remove(name)`: no error if the file is absent.

Runs on CPython and MicroPython (whose `os` has no `path` and no `fsync`).
Imports nothing of ours.
"""

import os

try:
    from errno import EEXIST, ENOENT
except ImportError:  # a MicroPython build without errno
    ENOENT = 2
    EEXIST = 17

TMP_SUFFIX = ".tmp"


def _errno(exc):
    return exc.args[0] if exc.args else None


def _sync(file):
    """Flush Python's buffer, then the OS's when this port can (MicroPython has no fsync)."""
    file.flush()
    fsync = getattr(os, "fsync", None)
    if fsync is not None:
        fsync(file.fileno())


class FileStorage:
    """Files in one directory. It is created if missing (one level, like os.mkdir)."""

    def __init__(self, directory):
        self.directory = directory.rstrip("/") or "/"
        try:
            os.mkdir(self.directory)
        except OSError as exc:
            if _errno(exc) != EEXIST:
                raise

    def _path(self, name):
        return self.directory + "/" + name

    def _read_file(self, path):
        try:
            with open(path, "rb") as file:
                return file.read()
        except OSError as exc:
            if _errno(exc) == ENOENT:
                return None
            raise

    def read(self, name):
        path = self._path(name)
        data = self._read_file(path)
        if data is None:
            # A replace() cut short between its remove and its rename (the FAT
            # fallback below) leaves only the complete temporary file: finish it.
            data = self._read_file(path + TMP_SUFFIX)
            if data is not None:
                os.rename(path + TMP_SUFFIX, path)
        return data

    def replace(self, name, data):
        path = self._path(name)
        with open(path + TMP_SUFFIX, "wb") as file:
            file.write(data)
            _sync(file)
        try:
            os.rename(path + TMP_SUFFIX, path)  # atomic over the old file on POSIX and littlefs
        except OSError:
            # FAT (a Pico's SD card) refuses to rename over a file. The temporary
            # file is complete and synced, and read() finishes the job if the
            # power goes between these two calls.
            self.remove(name)
            os.rename(path + TMP_SUFFIX, path)
        self._sync_directory()

    def append(self, name, data, sync):
        with open(self._path(name), "ab") as file:
            file.write(data)
            if sync:
                _sync(file)

    def remove(self, name):
        try:
            os.remove(self._path(name))
        except OSError as exc:
            if _errno(exc) != ENOENT:
                raise

    def _sync_directory(self):
        # Makes the rename itself durable on Linux; MicroPython has no os.open.
        if not hasattr(os, "open") or not hasattr(os, "fsync"):
            return
        try:
            descriptor = os.open(self.directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(descriptor)
        except OSError:
            pass  # some file systems cannot sync a directory; the data itself is synced
        finally:
            os.close(descriptor)


class PowerCut(Exception):
    """Raised by MemoryStorage at the write chosen by `cut_power_during()`.

    Deliberately not an OSError: code that survives a failing card must not
    survive a power cut -- execution stops there, as it would on the unit.
    """


class MemoryStorage:
    """Files in a dict, with a model of what a power cut keeps.

    Each file has visible bytes (what `read` returns) and a durable length:
    everything up to the last synced append or replace. `cut_power()` throws
    away the unsynced tail, or keeps only part of it (a torn record).
    `cut_power_during(n)` makes the n-th next write stop half-way and raise
    PowerCut. `failing = True` makes every write raise OSError (a dead card).
    `writes` logs every write as (operation, name, byte count, synced).
    """

    def __init__(self):
        self.files = {}  # name -> bytes as read() returns them
        self.durable = {}  # name -> length of the prefix that survives a power cut
        self.writes = []  # (operation, name, byte count, synced)
        self.failing = False
        self._cut_at = None  # writes left before a simulated power cut

    def read(self, name):
        data = self.files.get(name)
        return None if data is None else bytes(data)

    def _cut_now(self, name):
        """True if this write is the one a power cut interrupts; OSError if failing."""
        if self.failing:
            raise OSError(5, "simulated I/O error on %s" % name)
        if self._cut_at is None:
            return False
        self._cut_at -= 1
        return self._cut_at <= 0

    def replace(self, name, data):
        if self._cut_now(name):
            self._cut_at = None
            raise PowerCut("power cut while replacing %s (old content kept)" % name)
        self.files[name] = bytes(data)
        self.durable[name] = len(data)
        self.writes.append(("replace", name, len(data), True))

    def append(self, name, data, sync):
        old = self.files.get(name, b"")
        if self._cut_now(name):
            self._cut_at = None
            self.files[name] = old + bytes(data[: len(data) // 2])
            raise PowerCut("power cut half-way through appending to %s" % name)
        self.files[name] = old + bytes(data)
        if sync:
            self.durable[name] = len(self.files[name])
        else:
            self.durable.setdefault(name, 0)
        self.writes.append(("append", name, len(data), sync))

    def remove(self, name):
        if self._cut_now(name):
            self._cut_at = None
            raise PowerCut("power cut before removing %s" % name)
        self.files.pop(name, None)
        self.durable.pop(name, None)
        self.writes.append(("remove", name, 0, True))

    def cut_power(self, keep_unsynced_bytes=0):
        """Lose what was not synced, except the first `keep_unsynced_bytes` of each file's tail."""
        self._cut_at = None
        for name in list(self.files):
            durable = self.durable.get(name, 0)
            kept = durable + max(0, keep_unsynced_bytes)
            self.files[name] = self.files[name][:kept]
            self.durable[name] = len(self.files[name])

    def cut_power_during(self, writes):
        """The `writes`-th write from now (1 = the next) is cut half-way and raises PowerCut."""
        self._cut_at = writes

    def written(self, name, operation=None):
        """The writes logged for file `name` (of one operation, if given)."""
        return [w for w in self.writes if w[1] == name and operation in (None, w[0])]
