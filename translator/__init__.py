"""iotc-translator: CoAP/LwM2M devices as Azure IoT Central devices."""

__version__ = "0.1.0"
