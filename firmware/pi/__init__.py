"""The Raspberry Pi runtime: config, drivers and the event loop around the core."""
