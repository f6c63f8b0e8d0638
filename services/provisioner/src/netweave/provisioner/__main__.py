"""``python -m netweave.provisioner``: run the provisioner."""

from netweave.provisioner.app import SERVICE, create_app
from netweave.provisioner.config import ProvisionerSettings
from netweave.runtime.logging import configure_logging
from netweave.runtime.service import serve


def main() -> None:
    settings = ProvisionerSettings()
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
