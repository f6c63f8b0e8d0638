"""``python -m netweave.subscriptions``: run the service, or ``rebuild`` its projection."""

from __future__ import annotations

import argparse
import asyncio

from netweave.runtime.logging import configure_logging
from netweave.runtime.service import serve
from netweave.subscriptions.app import MIGRATIONS, SERVICE, create_app
from netweave.subscriptions.config import SubscriptionsSettings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m netweave.subscriptions")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the service (the default)")
    rebuild = commands.add_parser("rebuild", help="replay the streams into an empty database")
    rebuild.add_argument("--database-url", required=True, help="SQLAlchemy async URL of an empty database")
    args = parser.parse_args()
    settings = SubscriptionsSettings()
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    if args.command == "rebuild":
        from netweave.subscriptions.rebuild import rebuild as replay

        password = settings.nats_password.get_secret_value() if settings.nats_password else None
        applied = asyncio.run(
            replay(
                args.database_url,
                settings.nats_servers(),
                MIGRATIONS,
                user=settings.nats_user,
                password=password,
            )
        )
        print(f"rebuilt {args.database_url} from {applied} events")
        return
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
