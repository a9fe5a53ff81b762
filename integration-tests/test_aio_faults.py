"""AsyncClient in the fault suite: a broker restart (see test_faults.py for the thread client)."""

from __future__ import annotations

import asyncio
import time

import pytest

from isc.client import IscError, TimeoutException
from isc.client.aio import AsyncClient
from isc_testing import RabbitMQNode
from isc_testing.nodes import NodeProcess

pytestmark = pytest.mark.fault


async def _answers(client: AsyncClient) -> bool:
    try:
        return bool(await client.calc.add.with_timeout(1)(1, 1) == 2)
    except IscError:
        return False


@pytest.mark.codec_independent
@pytest.mark.xdist_group("broker-outage")
def test_an_async_client_survives_a_broker_restart(
    rabbitmq_node: RabbitMQNode, exchange: str
) -> None:
    url = rabbitmq_node.amqp_url

    async def main(node: NodeProcess) -> None:
        async with AsyncClient(url, exchange=exchange, invoke_timeout=5) as client:
            node_pid = await client.calc.pid()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, rabbitmq_node.stop)
            while client.is_connected:
                await asyncio.sleep(0.02)
            # A call made during the outage waits for a connection up to its deadline...
            with pytest.raises(TimeoutException, match="not connected to"):
                await client.calc.add.with_timeout(0.5)(1, 2)
            # ... and one whose deadline outlasts the outage is sent once the broker is back.
            survivor = client.calc.add.with_timeout(60).call_async(20, 22)
            await loop.run_in_executor(None, rabbitmq_node.start)
            deadline = time.monotonic() + 10
            while not await _answers(client):
                assert time.monotonic() < deadline, "calls did not work again"
                await asyncio.sleep(0.05)
            assert await survivor == 42
            assert await client.calc.pid() == node_pid  # the same node reconnected

    node = NodeProcess.serve(url, exchange, "calc:Calc", "calc:Events").start()
    try:
        asyncio.run(main(node))
    finally:
        node.stop()
