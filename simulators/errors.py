"""The simulators' root exception."""


class SimulatorError(Exception):
    """A simulation cannot run as asked: a bad scenario, route or option."""
