"""Broker naming, the error hierarchy and version consistency across the distributions."""

from __future__ import annotations

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
        for dep, op, pinned in re.findall(r'"(isc-[a-z]+|isclib)(?:\[\w+\])?(~=|==)([\d.]+)"', text):
            if op == "==":
                assert pinned == version, f"{pyproject}: {dep}=={pinned}"
            else:
                assert pinned.startswith(major_minor), f"{pyproject}: {dep}~={pinned}"
        if "isclib" in str(pyproject.parent.name):
            assert f'version = "{version}"' in text
