"""``python -m netweave.inventory``: run the inventory service."""

from netweave.inventory.app import SERVICE, create_app
from netweave.inventory.config import InventorySettings
from netweave.runtime.logging import configure_logging
from netweave.runtime.service import serve


def main() -> None:
    settings = InventorySettings()
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
