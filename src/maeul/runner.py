"""Running the ASGI app under uvicorn."""

from __future__ import annotations

import uvicorn

from .config import Settings
from .hub.server import build_app


def serve(settings: Settings) -> None:
    app = build_app(settings)
    if settings.mqtt_url:
        from .ingest.mqtt import start_mqtt_ingest

        start_mqtt_ingest(app.state.services, settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                access_log=False)
