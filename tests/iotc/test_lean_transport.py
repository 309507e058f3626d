"""The lean transport's failure paths, over real sockets."""

from __future__ import annotations

import asyncio
import ssl
import time

import pytest

from emulator.app import Emulator
from translator.iotc.client.credentials import client_ssl_context
from translator.iotc.client.lean_transport import ConnectionGroup, LeanTransport
from translator.iotc.client.transport import ConnectParams, ConnectRefusedError


def params(emulator: Emulator, **overrides: object) -> ConnectParams:
    assert emulator.tls is not None
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": emulator.mqtt_port,
        "client_id": "nobody",
        "username": "hub-a.azure-devices.net/nobody/?api-version=2021-04-12",
        "password": "SharedAccessSignature sr=x&sig=y&se=1",
        "ssl_context": client_ssl_context(emulator.tls.ca_path),
        "server_hostname": "hub-a.azure-devices.net",
        "connect_timeout": 5.0,
    }
    values.update(overrides)
    return ConnectParams(**values)  # type: ignore[arg-type]


async def test_refused_connect_raises_with_the_return_code(emulator: Emulator) -> None:
    group = ConnectionGroup()
    transport = LeanTransport(lambda topic, payload: None, group)
    with pytest.raises(ConnectRefusedError) as caught:
        await transport.connect(params(emulator))
    assert caught.value.return_code == 5
    assert not transport.is_connected
    await group.close()


async def test_wrong_server_name_fails_tls_verification(emulator: Emulator) -> None:
    group = ConnectionGroup()
    transport = LeanTransport(lambda topic, payload: None, group)
    with pytest.raises(ssl.SSLCertVerificationError):
        await transport.connect(params(emulator, server_hostname="evil.example.com"))
    await group.close()


async def test_untrusted_ca_fails_tls_verification(emulator: Emulator) -> None:
    group = ConnectionGroup()
    transport = LeanTransport(lambda topic, payload: None, group)
    with pytest.raises(ssl.SSLCertVerificationError):
        await transport.connect(params(emulator, ssl_context=ssl.create_default_context()))
    await group.close()


async def test_silent_server_is_detected_by_keep_alive() -> None:
    """A server that accepts TCP and then says nothing: connect gives up at its timeout."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)  # the server's silence, longer than the connect timeout under test
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    group = ConnectionGroup(tick=0.1)
    transport = LeanTransport(lambda topic, payload: None, group)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await transport.connect(
            ConnectParams(
                "127.0.0.1", port, "c", "u", None, client_ssl_context(None), "localhost", connect_timeout=0.5
            )
        )
    assert time.monotonic() - started < 2
    server.close()
    await group.close()
