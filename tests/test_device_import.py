"""`devices import`: a row pins any id the services accept, and is refused (with its line) otherwise."""

from __future__ import annotations

import contextlib
import sqlite3
import stat
from pathlib import Path

import pytest

from translator.cli import main
from translator.device_import import ImportError_, parse_devices_csv

HUB = "HostName=h.azure-devices.net;DeviceId={};SharedAccessKey=a2V5"


def test_a_row_pins_an_id_the_rule_would_not_make() -> None:
    [device] = parse_devices_csv("deviceId,endpoint\nMyDevice-01,urn:imei:359000000000001\n")
    assert device.entry.device_id == "MyDevice-01"
    assert device.entry.endpoint == "urn:imei:359000000000001"


@pytest.mark.parametrize("device_id", ["dev 1", "dev#1", "a" * 129, "ä"])
def test_ids_no_service_accepts_are_refused(device_id: str) -> None:
    with pytest.raises(ImportError_, match=r"line 2: deviceId .*IoT Hub device id"):
        parse_devices_csv(f"deviceId\n{device_id}\n")


def test_dps_devices_need_registration_ids() -> None:
    """`dev$1` is a valid IoT Hub id, but DPS would refuse it as a registration id."""
    with pytest.raises(ImportError_, match="DPS registration id"):
        parse_devices_csv("deviceId\ndev$1\n")
    [device] = parse_devices_csv(f"deviceId,connectionString\ndev$1,{HUB.format('dev$1')}\n")
    assert device.assignment is not None


def test_psk_columns_secure_the_endpoint() -> None:
    key = "00112233445566778899aabbccddeeff"
    [device] = parse_devices_csv(f"deviceId,endpoint,pskIdentity,pskKey\nd1,urn:dev:1,id-1,{key}\n")
    assert device.psk is not None and device.psk.endpoint == "urn:dev:1"
    assert device.psk.identity == "id-1" and device.psk.key == bytes.fromhex(key)
    assert key not in repr(device)
    [plain] = parse_devices_csv("deviceId,pskIdentity,pskKey\nd2,,\n")
    assert plain.psk is None


@pytest.mark.parametrize(
    ("identity", "key", "problem"),
    [("id", "", "go together"), ("id", "0011", "PSK must be 16..64 bytes"), ("id", "zz" * 16, "pskKey")],
)
def test_bad_psk_columns_are_refused_without_quoting_the_key(identity: str, key: str, problem: str) -> None:
    with pytest.raises(ImportError_, match=problem) as error:
        parse_devices_csv(f"deviceId,pskIdentity,pskKey\nd1,{identity},{key}\n")
    assert "line 2" in str(error.value) and (not key or key not in str(error.value))


def test_import_then_remove_psk_through_the_cli(tmp_path: Path) -> None:
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text("deviceId,pskIdentity,pskKey\nd1,id-1,00112233445566778899aabbccddeeff\n")
    state = ["--state-dir", str(tmp_path / "state")]
    assert main(["devices", "import", str(csv_file), *state]) == 0
    database = tmp_path / "state" / "translator.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600  # it holds keys
    with contextlib.closing(sqlite3.connect(database)) as db:
        assert db.execute("SELECT identity, endpoint FROM dtls_psk").fetchall() == [("id-1", "d1")]
    assert main(["devices", "remove-psk", "d1", *state]) == 0
    assert main(["devices", "remove-psk", "d1", *state]) == 1  # nothing left to remove
    with contextlib.closing(sqlite3.connect(database)) as db:
        assert db.execute("SELECT COUNT(*) FROM dtls_psk").fetchone() == (0,)


def test_other_columns_are_kept_for_enrichment() -> None:
    [device, bare] = parse_devices_csv("deviceId,Site,building,customer\nd1,Lyon, B2 ,Contoso\nd2,,,\n")
    assert device.entry.attributes == (("Site", "Lyon"), ("building", "B2"), ("customer", "Contoso"))
    assert bare.entry.attributes == ()  # empty cells are no value


@pytest.mark.parametrize(
    ("column", "meant"), [("symetricKey", "symmetricKey"), ("certificat", "certificate")]
)
def test_a_near_miss_of_a_known_column_is_refused_as_a_typo(column: str, meant: str) -> None:
    with pytest.raises(ImportError_, match=f"column '{column}' is unknown: did you mean {meant}"):
        parse_devices_csv(f"deviceId,{column}\nd1,x\n")


def test_connection_column_marks_a_device_ephemeral() -> None:
    rows = parse_devices_csv("deviceId,connection\nsleepy-1,Ephemeral\nawake-1,persistent\nplain-1,\n")
    assert [d.entry.connection for d in rows] == ["ephemeral", "persistent", None]
    with pytest.raises(ImportError_, match=r"line 2: connection 'sometimes' is not one of"):
        parse_devices_csv("deviceId,connection\nx-1,sometimes\n")


def test_the_connection_column_is_no_attribute() -> None:
    [device] = parse_devices_csv("deviceId,connection,site\nsleepy-1,ephemeral,Lyon\n")
    assert (device.entry.connection, device.entry.attributes) == ("ephemeral", (("site", "Lyon"),))


def test_a_codec_the_rows_name_is_checked_at_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad codec file is refused with its file and line by the import, not found at the device's
    registration (acknowledged to the device while serve only logged the error)."""
    codec = tmp_path / "meter.toml"
    codec.write_text(
        '[template]\nid = "dtmi:test:meter;1"\n[[property]]\npath = "/3/0/0"\nname = "maker"\n'
        '[transform]\nrename = { maker = "manufacturer" }\n'
    )
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(f"deviceId,codec\nmeter-1,{codec}\n")
    state = ["--state-dir", str(tmp_path / "state")]
    assert main(["devices", "import", str(csv_file), *state]) == 2
    assert f"{codec}:7: transform.rename: 'maker' is a property" in capsys.readouterr().err
    assert not (tmp_path / "state" / "translator.db").exists()  # nothing imported
    codec.write_text(
        '[template]\nid = "dtmi:test:meter;1"\n[[property]]\npath = "/3/0/0"\nname = "manufacturer"\n'
    )
    assert main(["devices", "import", str(csv_file), *state]) == 0
