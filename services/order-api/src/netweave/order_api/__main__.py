"""``python -m netweave.order_api``: run the order API."""

from netweave.order_api.app import SERVICE, create_app
from netweave.order_api.config import OrderApiSettings
from netweave.runtime.logging import configure_logging
from netweave.runtime.service import serve


def main() -> None:
    settings = OrderApiSettings()
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
