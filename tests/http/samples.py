"""Request bodies of the senders the HTTP ingest accepts, shared by unit and e2e tests."""

from __future__ import annotations

from typing import Any

TTN_UPLINK: dict[str, Any] = {
    "end_device_ids": {
        "device_id": "eui-0004a30b001c0530",
        "application_ids": {"application_id": "app1"},
        "dev_eui": "0004A30B001C0530",
    },
    "received_at": "2026-02-12T15:15:46.123456789Z",
    "uplink_message": {
        "f_port": 1,
        "frm_payload": "AQI=",
        "decoded_payload": {"temperature": 21.5, "humidity": 40},
        "received_at": "2026-02-12T15:15:45.787654321Z",
    },
}
