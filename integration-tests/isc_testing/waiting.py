"""Bounded waiting for the suite: it now ships with isc-client as ``isc.client.testing``.

Re-exported here so the suite keeps importing ``isc_testing.waiting``; the code lives in
``isc/client/testing/waiting.py``.
"""

from __future__ import annotations

from isc.client.testing.waiting import Deadline, WaitTimeout, wait_for

__all__ = ["Deadline", "WaitTimeout", "wait_for"]
