"""The balise protocol: topics, messages, the codec and its JSON Schema files.

The one contract between units, gateway and simulators; nothing else defines
a message. Pure Python that also runs on MicroPython (no dataclasses, no
typing at run time, no I/O). Imports nothing outside protocol/.
"""

from protocol.codec import VERSION, decode, encode, topic_of
from protocol.errors import ProtocolError

__all__ = ["VERSION", "ProtocolError", "decode", "encode", "topic_of"]
