"""The translator as an IoT Central gateway (`[gateway] enabled = true`, issue 19 §1): one device of its own
(health telemetry, properties, commands) that every LwM2M device is attached to as a downstream device.

Pure modules: `settings`, `model` (its DTDL model and device template), `health` (telemetry from the
translator's figures). I/O shells: `device` (the gateway's session and its periodic telemetry) and
`commands` (what its commands do to the running translator). The downstream relation itself is one field of
each device's DPS registration payload (`translator.iotc.protocol.dps`).
"""
