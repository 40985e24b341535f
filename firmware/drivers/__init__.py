"""Drivers: thin CPython adapters between the unit's hardware and the core.

Each driver is a small class with a fake beside it (gps_fake.FakeGps for the GPS sources).
A hardware or third-party library is imported only by the module of the driver that uses
it, so the rest of the firmware imports on a laptop without it.
"""
