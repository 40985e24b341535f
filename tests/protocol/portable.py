"""Helpers for tests that run under both pytest and the MicroPython Unix port.

Portable test modules use only plain functions and `assert`, with these
helpers instead of pytest's, so tests/protocol/mpy_runner.py can run them.
"""


def raises(error_type, function, *args, **kwargs):
    """Call `function`; return the error it raised, failing unless it is an `error_type`."""
    try:
        function(*args, **kwargs)
    except error_type as exc:
        return exc
    raise AssertionError("%s did not raise %s" % (function.__name__, error_type.__name__))
