"""Location reaches IoT Central as one geopoint ({"lat", "lon", "alt"}) so its maps can plot it, and a
notification of one coordinate still sends the whole point.
https://learn.microsoft.com/azure/iot-central/core/howto-use-location-data"""

from __future__ import annotations

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import simulated, telemetry_matching
from translator.lwm2m import Path
from translator.serve import Translator

LATITUDE = Path(6, 0, 0)


async def test_location_lands_as_a_geopoint(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    async with simulated(translator, "geo-1") as device:
        [event] = await telemetry_matching(rest, "geo-1", lambda e: e["component"] == "location")
        assert event["body"] == {"location": {"lat": 48.85, "lon": 2.35}}
        device.set_value(LATITUDE, 48.9)
        [moved] = await telemetry_matching(
            rest, "geo-1", lambda e: e["component"] == "location", after=event["sequence"]
        )
        assert moved["body"] == {"location": {"lat": 48.9, "lon": 2.35}}
