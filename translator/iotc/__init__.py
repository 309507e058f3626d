"""The IoT Central face: SAS, DPS, topics, property bags, twin and method documents.

The modules here are pure (sans-I/O): they build and parse what goes over MQTT and decide what to
do next, but never open a socket or sleep. The device session and session pool drive them.
"""
