"""``python -m netweave.console``: serve the console until SIGINT/SIGTERM."""

from __future__ import annotations

import uvicorn

from netweave.console.app import create_app
from netweave.console.config import ConsoleSettings
from netweave.runtime.logging import configure_logging


def main() -> None:
    settings = ConsoleSettings()
    configure_logging("console", settings.log_level, settings.log_format)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        # Open event streams would otherwise hold a shutdown for as long as they last.
        timeout_graceful_shutdown=3,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
