from __future__ import annotations

import pytest

from translator.iotc.protocol.errors import (
    ConnectionLostError,
    DeviceBlockedError,
    DeviceNotFoundError,
    HubError,
    HubRequestError,
    HubThrottledError,
    HubUnauthorizedError,
    IotcError,
    IotcFormatError,
    MessageTooLargeError,
    ProvisioningError,
    ProvisioningFailedError,
    ProvisioningThrottledError,
    ProvisioningUnauthorizedError,
    SasTokenError,
    TopicError,
    hub_error_for_status,
)


@pytest.mark.parametrize(
    ("status", "kind", "reprovision"),
    [
        (401, HubUnauthorizedError, True),
        (404, DeviceNotFoundError, True),
        (429, HubThrottledError, False),
        (400, HubRequestError, False),
        (500, HubRequestError, False),
    ],
)
def test_hub_status_mapping(status: int, kind: type[HubError], reprovision: bool) -> None:
    error = hub_error_for_status(status, retry_after=5, what="twin GET")
    assert type(error) is kind
    assert error.status == status
    assert error.reprovision is reprovision
    assert "twin GET" in str(error)
    if isinstance(error, HubThrottledError):
        assert error.retry_after == 5


def test_hierarchy() -> None:
    for kind in (
        ProvisioningUnauthorizedError,
        DeviceBlockedError,
        ProvisioningThrottledError,
        ProvisioningFailedError,
    ):
        assert issubclass(kind, ProvisioningError)
    for hub_kind in (ConnectionLostError, MessageTooLargeError, HubThrottledError):
        assert issubclass(hub_kind, HubError)
    assert issubclass(ProvisioningError, IotcError)
    assert issubclass(HubError, IotcError)
    # Format errors are ValueErrors too, for callers that only care about bad input.
    assert issubclass(SasTokenError, ValueError)
    assert issubclass(TopicError, IotcFormatError)


def test_message_too_large_carries_sizes() -> None:
    error = MessageTooLargeError(300_000)
    assert (error.size, error.limit, error.status) == (300_000, 262_144, 413)
    assert not error.reprovision
