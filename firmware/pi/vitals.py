"""What a Pi can say about its health: CPU temperature, free disk, supply voltage."""

from __future__ import annotations

import shutil
from pathlib import Path

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")


def _read_number(path: Path, scale: float) -> float | None:
    try:
        return float(path.read_text().strip()) * scale
    except (OSError, ValueError):
        return None


class Vitals:
    """Measures on request; anything it cannot read is left out (None)."""

    def __init__(self, state_dir: str, supply_voltage_file: str | None = None) -> None:
        self.state_dir = state_dir
        self.supply_voltage_file = Path(supply_voltage_file) if supply_voltage_file else None

    def __call__(self) -> dict[str, float | int | None]:
        try:
            disk_free_mb: int | None = shutil.disk_usage(self.state_dir).free // 2**20
        except OSError:
            disk_free_mb = None
        supply = self.supply_voltage_file
        return {
            # The kernel reports millidegrees Celsius.
            "cpu_temp_c": _read_number(THERMAL_ZONE, 0.001),
            "disk_free_mb": disk_free_mb,
            "supply_v": _read_number(supply, 1.0) if supply else None,
        }
