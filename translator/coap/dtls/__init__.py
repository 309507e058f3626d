"""DTLS 1.2 for the CoAP face (RFC 6347, LwM2M's PSK suites): a session table in front of the datagram tap.

`records` parses what DTLS sends in the clear, `openssl` is the one module that touches OpenSSL (pyOpenSSL
plus cryptography's binding for PSK), `peers` names a device's DTLS identity as an address the rest of the
face can use, `sessions` is the sans-I/O session table and `endpoint` its asyncio shell on a UDP socket.
"""
