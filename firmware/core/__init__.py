"""The unit's brain, sans-I/O: fed events (fix, button edge, link, ack, downlink,
tick), it returns actions (publish, LED, buzzer). Never calls time, sockets or
GPIO; runs unchanged on CPython and MicroPython. Imports only protocol/ and
firmware/core/.
"""
