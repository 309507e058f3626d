"""IoT Central's protocol without I/O: SAS tokens, topics, property bags, twin and method documents, the
DPS registration state machine, MQTT 3.1.1 packets, backoff and rate-limit arithmetic.

Nothing here opens a socket, reads a file, sleeps or imports asyncio/ssl; callers pass in the time and the
randomness. `tests/test_layers.py` checks it in a fresh interpreter.
"""
