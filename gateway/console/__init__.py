"""The dispatcher console: a static page the gateway serves at `/`.

Plain HTML, CSS and JavaScript modules, no build step. The map library
(Leaflet) comes from the npm registry at set-up (`npm ci` in this folder, run
by `make`), and the gateway serves it itself: command rooms are often cut off
from the internet, so nothing is fetched from a CDN at run time. Map tiles come
from the tile server in gateway.toml's [console] table, if any; without tiles
the page still shows every unit, the board and the alarms.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
STATIC = HERE / "static"
LEAFLET = HERE / "node_modules" / "leaflet" / "dist"


def mount(app: FastAPI) -> None:
    if not (LEAFLET / "leaflet.js").is_file():
        log.warning(
            "console: %s is missing (run `make` or `npm ci --prefix gateway/console`): "
            "the page works without its map",
            LEAFLET,
        )
    app.mount("/vendor/leaflet", StaticFiles(directory=LEAFLET, check_dir=False), "leaflet")
    app.mount("/static", StaticFiles(directory=STATIC), "console")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})
