"""A call to a service whose nodes all stopped fails within about a second, not its timeout.

The service queue outlives its last node (it is not auto-deleted), so the request is routable
and nothing returns it: a call unanswered for NO_CONSUMER_CHECK_AFTER seconds asks the broker
whether anybody consumes the queue, and fails with NoNodeConsumingError when nobody does.
"""

from __future__ import annotations

import time

import pytest

from isc.client import Client, NoNodeConsumingError, ServiceNotFoundError, cli
from isc_testing.nodes import NodeProcess

# A stopped node is a fault (as in test_faults.py): on one Python of the matrix.
pytestmark = [pytest.mark.codec_independent, pytest.mark.fault]


def test_calls_to_a_service_whose_nodes_stopped_fail_fast(
    amqp_url: str, exchange: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with Client(amqp_url, exchange=exchange, invoke_timeout=10) as client:
        with NodeProcess.serve(amqp_url, exchange, "calc:Calc"):
            assert client.calc.add(1, 1) == 2
        # the node stopped; its queue stays, with no consumer
        for call in (client.calc.add, lambda *a: client.calc.add.call_async(*a).result(10)):
            started = time.monotonic()
            with pytest.raises(NoNodeConsumingError, match="no node is consuming") as caught:
                call(1, 2)
            assert time.monotonic() - started < 1.5
            assert isinstance(caught.value, ServiceNotFoundError)
    where = ["--url", amqp_url, "--exchange", exchange]
    assert cli.main(["call", "calc.add", "1", "2", *where]) == cli.EXIT_FAILURE
    err = capsys.readouterr().err
    assert "no node is consuming" in err
    assert "--timeout" not in err  # not the advice for a slow method
    started = time.monotonic()
    assert cli.main(["inspect", "calc", *where]) == cli.EXIT_FAILURE
    assert "no node is consuming" in capsys.readouterr().err
    assert time.monotonic() - started < 1.5  # was 20 s: the default --timeout
