"""Former home of the throwaway RabbitMQ node: it now ships in isc-testing as ``isc.testing``.

Kept so that ``from isc.client.testing.broker import RabbitMQNode`` keeps working; install
``isc-client[testing]`` for it.
"""

from __future__ import annotations

try:
    from isc.testing.rabbitmq import *  # noqa: F403
    from isc.testing.rabbitmq import __all__  # noqa: F401
except ModuleNotFoundError as exc:  # pragma: no cover - depends on what is installed
    if exc.name is None or not exc.name.startswith("isc.testing"):
        raise
    raise ModuleNotFoundError(
        "the throwaway RabbitMQ node moved to the isc-testing distribution: "
        'pip install "isc-client[testing]"',
        name=exc.name,
    ) from exc
