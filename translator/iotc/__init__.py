"""The IoT Central face, in two layers.

`translator.iotc.protocol` is pure (sans-I/O): it builds and parses what goes over MQTT and decides what to
do next, but never opens a socket, reads a file or sleeps. `translator.iotc.client` drives it: the MQTT
transports over TLS, the DPS client, device sessions and the session pool. `tests/test_layers.py` holds the
line.
"""
