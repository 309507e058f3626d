"""Pure LwM2M model: paths, object models, link format and content formats. No sockets, no event loop; the
only I/O is `load_ddf_file`/`load_ddf_directory` reading object definitions the caller names.

The CoAP layer calls `decode`/`encode` with a `ContentFormat`, the request path and a registry, and
maps `Lwm2mFormatError.kind` to its answer; the codec layer consumes `Record`s.
"""

from translator.lwm2m.ddf import load_ddf_directory, load_ddf_file, parse_ddf
from translator.lwm2m.errors import DdfError, ErrorKind, Lwm2mFormatError, UnrepresentableValue
from translator.lwm2m.formats import (
    SINGLE_VALUE_FORMATS,
    SUPPORTED_FORMATS,
    ContentFormat,
    decode,
    encode,
)
from translator.lwm2m.linkformat import (
    Link,
    RegisteredObjects,
    format_links,
    parse_links,
    parse_registration,
)
from translator.lwm2m.model import ObjectModel, Operations, ResourceModel, ResourceType
from translator.lwm2m.paths import ROOT, Path, PathLevel
from translator.lwm2m.records import ObjLink, Record, Value
from translator.lwm2m.registry import ObjectRegistry, ResourceLookup, VersionedLookup, builtin_models

__all__ = [
    "ROOT",
    "SINGLE_VALUE_FORMATS",
    "SUPPORTED_FORMATS",
    "ContentFormat",
    "DdfError",
    "ErrorKind",
    "Link",
    "Lwm2mFormatError",
    "ObjLink",
    "ObjectModel",
    "ObjectRegistry",
    "Operations",
    "Path",
    "PathLevel",
    "Record",
    "RegisteredObjects",
    "ResourceLookup",
    "ResourceModel",
    "ResourceType",
    "UnrepresentableValue",
    "Value",
    "VersionedLookup",
    "builtin_models",
    "decode",
    "encode",
    "format_links",
    "load_ddf_directory",
    "load_ddf_file",
    "parse_ddf",
    "parse_links",
    "parse_registration",
]
