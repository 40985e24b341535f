"""A unit killed at random points never hands out a sequence number twice.

CPython only: a child process calls next() in a loop on real files and
prints each number; it is killed with SIGKILL at a random moment, restarted,
killed again... and every number printed across all runs must be strictly
increasing. (SIGKILL keeps the OS's page cache; losing unsynced bytes, the
other half of a power cut, is modelled in test_seqstore.py with
MemoryStorage.)
"""

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware.core.seqstore import SEQ_FILES, SequenceStore, decode_ceiling
from firmware.core.storage import FileStorage

ROOT = Path(__file__).resolve().parents[3]
CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from firmware.core.seqstore import SequenceStore
from firmware.core.storage import FileStorage
store = SequenceStore(FileStorage(sys.argv[2]), block=int(sys.argv[3]))
out = sys.stdout
print("ready", flush=True)
while True:
    out.write("%d\\n" % store.next())
    out.flush()
"""


def run_and_kill(directory: Path, block: int, rng: random.Random) -> list[int]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(ROOT), str(directory), str(block)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n", child.stderr.read() if child.stderr else b""
    time.sleep(rng.uniform(0, 0.05))
    os.kill(child.pid, signal.SIGKILL)
    out, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err
    lines = out.split(b"\n")
    # The last line may have been cut mid-write: keep only complete ones.
    return [int(line) for line in lines[:-1]]


@pytest.mark.slow
def test_numbers_strictly_increase_across_sigkills(tmp_path: Path) -> None:
    rng = random.Random(20241122)
    printed: list[int] = []
    runs = 25
    for _ in range(runs):
        printed += run_and_kill(tmp_path, block=rng.choice([1, 3, 50]), rng=rng)
    assert len(printed) > runs  # the children did hand out numbers
    for earlier, later in itertools.pairwise(printed):
        assert later > earlier, (earlier, later)
    # And a final restart continues above all of them.
    assert SequenceStore(FileStorage(str(tmp_path))).next() > printed[-1]
    for name in SEQ_FILES:
        assert decode_ceiling((tmp_path / name).read_bytes()) is not None
