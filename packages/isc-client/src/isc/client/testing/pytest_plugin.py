"""Former path of isc's pytest plugin, kept for ``pytest_plugins`` lines that name it.

The plugin (fixtures ``isc_broker``, ``isc_amqp_url``, ``isc_exchange``) now ships in the
isc-testing distribution as ``isc.testing.pytest_plugin``; install ``isc-client[testing]``.
"""

from __future__ import annotations

try:
    from isc.testing.pytest_plugin import *  # noqa: F403
    from isc.testing.pytest_plugin import (  # noqa: F401  (fixtures: pytest finds them here)
        __all__,
        isc_amqp_url,
        isc_broker,
        isc_exchange,
    )
except ModuleNotFoundError as exc:  # pragma: no cover - depends on what is installed
    if exc.name is None or not exc.name.startswith("isc.testing"):
        raise
    raise ModuleNotFoundError(
        "isc's pytest plugin moved to the isc-testing distribution "
        '(pytest_plugins = ["isc.testing.pytest_plugin"]): pip install "isc-client[testing]"',
        name=exc.name,
    ) from exc
