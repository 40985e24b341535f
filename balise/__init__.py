"""balise: the command line that ties the parts together.

This package only parses arguments and hands over to the part that does the
work (gateway, firmware, simulators); it holds no logic of its own.
"""

__version__ = "0.1.0"
