"""Secrets at rest after a real start: the translator's store (imported device keys in clear), the
emulator's application (group keys), its CA and server keys and minted device keys are 0600 in 0700
directories, whatever the umask lets through; and DEBUG logs do not print SQL parameters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.app import Emulator
from tests.conftest import emulator_config
from tests.e2e.conftest import STEP, translator_settings
from tests.pki import make_ca, write_key
from translator.iotc.client.credentials import mint_device_certificate
from translator.ops.logs import configure_logging
from translator.serve import Translator
from translator.store import SqliteStore
from translator.store.base import DeviceEntry

SECRET_KEY = "c2VjcmV0LWRldmljZS1rZXktdGhhdC1tdXN0LW5vdC1sZWFr"


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    """The common default (022): files 0644 and directories 0755 unless created with a mode."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_state_is_private_after_a_real_start(tmp_path: Path) -> None:
    with umask(0o022):
        async with asyncio.timeout(STEP), Emulator(emulator_config(tmp_path / "emulator")) as emulator:
            settings = translator_settings(emulator, tmp_path / "translator")
            translator = Translator(settings)
            await translator.start()
            try:
                await translator.store.put_device(
                    DeviceEntry("imported-1", "imported-1", symmetric_key=SECRET_KEY)
                )
                state = settings.state_dir
                assert mode(state) == 0o700
                db = settings.store_path
                files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
                assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
            finally:
                await translator.stop()
            emulator_state = tmp_path / "emulator"
            assert mode(emulator_state) == 0o700
            for name in ("application.json", "ca-key.pem", "server-key.pem"):
                assert mode(emulator_state / name) == 0o600, name


async def test_state_left_loose_by_an_older_version_is_tightened(tmp_path: Path) -> None:
    with umask(0o022):
        async with asyncio.timeout(STEP), Emulator(emulator_config(tmp_path / "emulator")) as emulator:
            settings = translator_settings(emulator, tmp_path / "translator")
            settings.state_dir.mkdir(mode=0o755)
            settings.store_path.write_bytes(b"")  # 0644, as SQLite used to create it
            async with Translator(settings):
                assert mode(settings.state_dir) == 0o700
                assert mode(settings.store_path) == 0o600


def test_minted_device_keys_are_private_from_creation(tmp_path: Path) -> None:
    (tmp_path / "enrollment").mkdir()
    issuer = make_ca(tmp_path / "enrollment", "Test Enrollment CA")
    ca_key = write_key(issuer, tmp_path / "enrollment" / "ca-key.pem")
    with umask(0o022):
        identity = mint_device_certificate("dev-x509", issuer.path, ca_key, tmp_path / "certs")
    assert mode(tmp_path / "certs") == 0o700
    assert mode(identity.key_path) == 0o600
    assert not [p.name for p in (tmp_path / "certs").iterdir() if p.name.startswith(".")]  # no temp left


async def test_debug_logs_do_not_print_sql_parameters(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    configure_logging("DEBUG")
    caplog.set_level(logging.DEBUG)
    try:
        async with SqliteStore(tmp_path / "translator.db") as store:
            await store.put_device(DeviceEntry("imported-1", "imported-1", symmetric_key=SECRET_KEY))
            assert (await store.device_for_endpoint("imported-1")) is not None
        assert caplog.records, "DEBUG logging is on"
        assert SECRET_KEY not in caplog.text
        # Asked for, they are there (IOTC_TRANSLATOR_LOG_SQL=true).
        configure_logging("DEBUG", log_sql=True)
        caplog.clear()
        async with SqliteStore(tmp_path / "translator.db") as store:
            await store.put_device(DeviceEntry("imported-2", "imported-2", symmetric_key=SECRET_KEY))
        assert SECRET_KEY in caplog.text
    finally:
        logging.getLogger("aiosqlite").setLevel(logging.NOTSET)
