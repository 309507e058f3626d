"""IoT Central's client side: the asyncio shells around `translator.iotc.protocol` — MQTT transports over
TLS, credentials on disk, the DPS client, one device's session and the session pool.
"""
