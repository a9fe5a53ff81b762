"""isc-server: host isc services on gevent-driven nodes over RabbitMQ.

The ``Node`` and the ``expose`` / ``on`` / ``local_timer`` decorators arrive with the
client/server work; this release fixes the distribution and its dependencies (pika, gevent).
"""

from ._version import __version__

__all__ = ["__version__"]
