"""The bridge: owns each device's life from LwM2M registration to IoT Central session and back."""

from translator.bridge.bridge import Bridge
from translator.bridge.codecs import CodecCatalog

__all__ = ["Bridge", "CodecCatalog"]
