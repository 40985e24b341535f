"""The command room's HTTP API and live feed (docs/api.md).

FastAPI on uvicorn, inside the gateway's asyncio loop. `create_app(context)`
builds the application from the parts the gateway already runs (live state,
store, room database, the MQTT link's command sender), so tests can build one
around real parts without the rest of the service.
"""

from gateway.api.app import create_app
from gateway.api.context import ApiContext

__all__ = ["ApiContext", "create_app"]
