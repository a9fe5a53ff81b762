"""isc.server patches the standard library with gevent when imported: do it before anything
else, in this separate pytest run (the Makefile runs the server's unit tests on their own)."""

import isc.server  # noqa: F401
