"""``amqps://`` against a TLS-enabled throwaway RabbitMQ, with a CA made by the test.

openssl creates a private CA and a server certificate for ``localhost`` / ``127.0.0.1``. A
throwaway broker gets a TLS listener on 127.0.0.1. A node and a client that trust the CA talk
over it. A client that does not trust the CA is refused, with a clear error and no password in it.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from isc.client import Client, TimeoutException
from isc_testing import RabbitMQNode
from isc_testing.broker import free_port
from isc_testing.nodes import NodeProcess

pytestmark = [pytest.mark.fault, pytest.mark.codec_independent]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(directory: Path) -> None:
    """A CA (ca.pem) and a server key and certificate (server.key, server.pem) signed by it."""
    days = ["-days", "2"]
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.pem", *days, "-subj", "/CN=isc test CA", cwd=directory)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
             "server.csr", "-subj", "/CN=localhost", cwd=directory)  # fmt: skip
    (directory / "san.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", *days, "-extfile", "san.cnf",
             cwd=directory)  # fmt: skip


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A throwaway broker with a TLS listener: (its TLS port, the directory with ca.pem)."""
    if shutil.which("openssl") is None or not RabbitMQNode.available():
        pytest.skip("needs openssl and rabbitmq-server")
    certs = tmp_path_factory.mktemp("certs")
    make_certificates(certs)
    node = RabbitMQNode()
    try:
        port = free_port(exclude={node.amqp_port, node.dist_port})
        (node.base_dir / "rabbitmq.conf").write_text(
            f"listeners.ssl.local = 127.0.0.1:{port}\n"
            f"ssl_options.cacertfile = {certs / 'ca.pem'}\n"
            f"ssl_options.certfile = {certs / 'server.pem'}\n"
            f"ssl_options.keyfile = {certs / 'server.key'}\n"
            "ssl_options.verify = verify_none\n"
            "ssl_options.fail_if_no_peer_cert = false\n"
        )
        node.boot()
        yield port, certs
    finally:
        node.close()


def test_amqps_with_a_private_ca(tls_broker: tuple[int, Path], exchange: str) -> None:
    port, certs = tls_broker
    options = {"ca_certs": str(certs / "ca.pem"), "server_hostname": "localhost"}
    url = (
        f"amqps://guest:guest@127.0.0.1:{port}/%2F?ssl_options={urllib.parse.quote(repr(options))}"
    )
    with (
        NodeProcess.serve(url, exchange, "calc:Calc") as node,
        Client(url, exchange=exchange, invoke_timeout=10) as client,
    ):
        assert client.calc.add(1, 2) == 3
        client.notify("bang", 1)
        assert client.flush(10)
    assert "guest:guest" not in node.output
    assert "amqps://guest:***@127.0.0.1" in node.output


def test_amqps_refuses_a_server_it_cannot_verify(
    tls_broker: tuple[int, Path], exchange: str
) -> None:
    port, _certs = tls_broker
    url = f"amqps://guest:guest@127.0.0.1:{port}/%2F"  # the system CAs do not know this one
    with (
        Client(url, exchange=exchange, invoke_timeout=2) as client,
        pytest.raises(TimeoutException, match=r"not connected to amqps://guest:\*\*\*@") as info,
    ):
        client.calc.add(1, 2)
    assert "guest:guest" not in str(info.value)
    assert "SSLCertVerificationError" in str(info.value)
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
