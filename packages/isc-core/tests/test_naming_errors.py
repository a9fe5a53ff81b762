"""Broker naming, the error hierarchy and version consistency across the distributions."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import isc.core
from isc.core import (
    ConfigurationError,
    ConnectionLostError,
    IPCException,
    IscError,
    LocalException,
    RemoteException,
    ServiceNotFoundError,
    TimeoutException,
    broadcast_queue_name,
    fanout_exchange_name,
    new_correlation_id,
    redact_url,
    reply_queue_name,
    service_queue_name,
    service_routing_key,
    validate_exchange_name,
    validate_service_name,
)

REPO = Path(__file__).resolve().parents[3]


def test_names_follow_the_isclib_1_topology() -> None:
    assert fanout_exchange_name("isc") == "isc_fanout"
    assert service_queue_name("isc", "users") == "isc_service_users"
    assert service_routing_key("x", "users") == "x_service_users"
    assert re.fullmatch(r"response-[0-9a-f-]{36}", reply_queue_name())
    assert re.fullmatch(r"fanout_callback_[0-9a-f-]{36}", broadcast_queue_name())
    assert reply_queue_name() != reply_queue_name()


@pytest.mark.parametrize("bad", ["", None, 3, "amq.mine", "x" * 250])
def test_bad_exchange_names_are_configuration_errors(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="exchange"):
        validate_exchange_name(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", None, "s" * 250])
def test_bad_service_names_are_configuration_errors(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="service"):
        validate_service_name("isc", bad)  # type: ignore[arg-type]


def test_good_names_pass_validation() -> None:
    assert validate_exchange_name("isc") == "isc"
    assert validate_service_name("isc", "users") == "users"


def test_error_hierarchy_keeps_the_isclib_1_names() -> None:
    assert IPCException is IscError
    assert issubclass(TimeoutException, LocalException)
    assert issubclass(ConnectionLostError, LocalException)
    assert issubclass(ServiceNotFoundError, RemoteException)
    for name in isc.core.__all__:
        obj = getattr(isc.core, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, IscError), name


def test_every_distribution_has_the_same_version_and_sibling_ranges_admit_it() -> None:
    version = isc.core.__version__
    major_minor = ".".join(version.split(".")[:2])
    for version_file in REPO.glob("packages/*/src/isc/*/_version.py"):
        assert f'__version__ = "{version}"' in version_file.read_text(), version_file
    for pyproject in REPO.glob("packages/*/pyproject.toml"):
        text = pyproject.read_text()
        sibling_pins = re.findall(r'"(isc-[a-z]+|isclib)(?:\[\w+\])?(~=|==)([\d.]+)"', text)
        assert sibling_pins or "isc-core" in str(pyproject), pyproject
        for dep, op, pinned in sibling_pins:
            if op == "==":
                assert pinned == version, f"{pyproject}: {dep}=={pinned}"
            else:
                assert pinned.startswith(major_minor), f"{pyproject}: {dep}~={pinned}"
        if "isclib" in str(pyproject.parent.name):
            assert f'version = "{version}"' in text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://guest:secret@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/"),
        ("amqps://u:p%40ss@broker/vh?heartbeat=5", "amqps://u:***@broker/vh?heartbeat=5"),
        ("amqp://[::1]:5672/", "amqp://[::1]:5672/"),
        ("amqp://user:pw@[::1]:5672/", "amqp://user:***@[::1]:5672/"),
        ("amqp://127.0.0.1/", "amqp://127.0.0.1/"),
    ],
)
def test_redact_url_hides_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "secret" not in redact_url(url)


def test_redact_url_survives_garbage() -> None:
    # No parse needed: everything between "user:" and the last "@" is the password.
    assert redact_url("amqp://u:p@host:notaport/") == "amqp://u:***@host:notaport/"


@pytest.mark.parametrize("password", ["se#cret", "se/cret", "se?cret", "se@cret", "s:e#c/r?t"])
def test_redact_url_hides_passwords_with_unencoded_reserved_characters(password: str) -> None:
    url = f"amqp://guest:{password}@broker.example:5672/vh"
    assert redact_url(url) == "amqp://guest:***@broker.example:5672/vh"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_draws_its_own_correlation_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next id, and leave without running pytest's exit
        os.write(write, new_correlation_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode()
    parent = new_correlation_id()
    assert len(child) == len(parent) == 36
    assert child[:24] != parent[:24]  # another random part: the counters cannot collide
