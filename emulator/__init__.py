"""A local stand-in for Azure IoT Central: DPS and the IoT Hub device endpoint over TLS MQTT, plus a REST API.

It plays the other side of the translator, so it shares no code with `translator`.
"""
