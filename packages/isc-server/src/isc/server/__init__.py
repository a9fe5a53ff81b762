"""isc-server: host isc services on gevent-driven nodes over RabbitMQ.

Importing ``isc.server`` applies gevent's monkey patching (``gevent.monkey.patch_all()``), so
the node's calls, timers and any ``Client`` used inside services cooperate on one thread. Import
it early; it also works after threads (a ``Client``'s among them) started, and a ``Client``
made before switches to gevent on its next call. ``isc.client`` alone never patches.
"""

from gevent import monkey

if not monkey.is_module_patched("socket"):
    from ._patching import patch_all

    patch_all()

from isc.client import Client, RemoteException, TimeoutException
from isc.core import ConfigurationError

from ._blocking import run_blocking
from ._exporter import MetricsServer, serve_metrics
from ._logcontext import LogContextFilter
from ._metrics import NodeMetrics
from ._node import HOOK_NAMES, QUEUE_TYPES, Node
from ._services import INSPECT_METHOD, LISTENER_MODES, cluster_timer, expose, local_timer, on
from ._version import __version__

__all__ = [
    "__version__",
    "Client",
    "ConfigurationError",
    "HOOK_NAMES",
    "INSPECT_METHOD",
    "LISTENER_MODES",
    "LogContextFilter",
    "MetricsServer",
    "Node",
    "NodeMetrics",
    "QUEUE_TYPES",
    "RemoteException",
    "TimeoutException",
    "cluster_timer",
    "expose",
    "local_timer",
    "on",
    "run_blocking",
    "serve_metrics",
]
