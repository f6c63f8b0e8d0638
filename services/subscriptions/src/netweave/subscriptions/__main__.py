"""``python -m netweave.subscriptions``: run the subscriptions service."""

from netweave.runtime.logging import configure_logging
from netweave.runtime.service import serve
from netweave.subscriptions.app import SERVICE, create_app
from netweave.subscriptions.config import SubscriptionsSettings


def main() -> None:
    settings = SubscriptionsSettings()
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
