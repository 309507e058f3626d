"""HTTP ingest: a drop-in for IoT Central's Device Bridge v1. `v1` and `ttn` are pure (request bodies →
`BridgeRequest`); `server` is the aiohttp shell that hands them to the bridge's pipeline."""
