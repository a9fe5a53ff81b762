# conftest.py: shared by the tests of this directory.

# isc.server applies gevent's monkey patching when imported: do it before anything else
# (pika, the plugin below) so the whole test process cooperates with the node's greenlets.
import isc.server  # noqa: F401

# The isc fixtures (isc_amqp_url, isc_exchange, isc_broker), opted in explicitly.
pytest_plugins = ["isc.testing.pytest_plugin"]
