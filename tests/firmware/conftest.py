"""Fixtures shared by the firmware tests: see tests/gpsfake_helpers.py for `gpsfake`."""
