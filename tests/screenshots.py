"""Where tests put the screenshots they take of the console and the terminal view.

Every run takes them (so the views are rendered and saved for real); they replace the ones in
docs/img only when BALISE_SCREENSHOTS=docs/img is set, so a plain test run leaves the checkout
clean. Otherwise they go to a folder in the system's temporary directory.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def screenshots_dir() -> Path:
    chosen = os.environ.get("BALISE_SCREENSHOTS")
    path = ROOT / chosen if chosen else Path(tempfile.gettempdir()) / "balise-screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
