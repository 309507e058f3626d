"""Which codec a device gets: the one its import entry names, else the default codec for its objects with
the codec files in the codec directory overriding their objects. Loaded and checked at start-up."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from translator.codec import Codec, default_codec, load_codec
from translator.lwm2m import ObjectRegistry, RegisteredObjects
from translator.lwm2m import Path as Lwm2mPath
from translator.settings import CodecSettings

log = logging.getLogger(__name__)


# Distinct default-codec templates after which (and at every further multiple) a warning says so: an IoT
# Central application holds at most 1,000 device templates
# (https://learn.microsoft.com/azure/iot-central/core/concepts-quotas-limits#device-modeling).
TEMPLATE_WARNING_STEP = 100
APPLICATION_TEMPLATES = 1000


class CodecCatalog:
    def __init__(self, directory: Path | None, registry: ObjectRegistry, *, model_id: str = "") -> None:
        self.registry = registry
        self.model_id = model_id
        self._templates: set[str] = set()
        self._listeners: list[Callable[[Codec], None]] = []
        self._files: dict[Path, Codec] = {}
        self.overrides: tuple[Codec, ...] = ()
        if directory is not None and directory.is_dir():
            # A bad codec file stops start-up with its name, field and reason (CodecError).
            self.overrides = tuple(self.load(path) for path in sorted(directory.glob("*.toml")))
            log.info("codec files loaded from %s: %d", directory, len(self.overrides))
            for codec in self.overrides:
                if not codec.transforms.empty:
                    # An override lends the default codec its objects' mapping, not its template's extras:
                    # a computed field over two objects has no single object to go with.
                    log.warning(
                        "codec %s: its ingress transforms (computed, enrichment, drop, rename) apply to "
                        "the devices whose import names this file, not to the default codec's objects it "
                        "overrides",
                        codec.source,
                    )
        elif directory is not None:
            # Relative to the working directory: started elsewhere, the shipped codecs would silently not
            # apply and every object would get the default codec's names.
            log.warning(
                "codec directory %s not found (from %s): every object gets the default codec",
                directory,
                Path.cwd(),
            )
        self._defaults: dict[tuple[tuple[Lwm2mPath, ...], tuple[tuple[int, str | None], ...]], Codec] = {}

    @classmethod
    def from_settings(cls, settings: CodecSettings) -> CodecCatalog:
        """The catalog `serve` uses; `template export` builds it the same way, so both give one model id."""
        return cls(settings.directory, cls.registry_for(settings), model_id=settings.model_id)

    @staticmethod
    def registry_for(settings: CodecSettings) -> ObjectRegistry:
        """The LwM2M objects codecs are checked against: the built-in table and the settings' DDF files."""
        directory = settings.ddf_directory
        return ObjectRegistry.with_ddf_directory(directory) if directory else ObjectRegistry.builtin()

    def on_new_codec(self, listener: Callable[[Codec], None]) -> None:
        """`listener(codec)` for every codec this catalog builds or loads from now on (a worker of
        `serve --workers` tells its supervisor, whose embedded emulator publishes the templates)."""
        self._listeners.append(listener)

    def _new(self, codec: Codec) -> None:
        for listener in self._listeners:
            listener(codec)

    def load(self, path: Path) -> Codec:
        resolved = path.resolve()
        codec = self._files.get(resolved)
        if codec is None:
            codec = self._files[resolved] = load_codec(path, self.registry)
            self._new(codec)
        return codec

    def by_model_id(self, model_id: str) -> Codec | None:
        """A codec this catalog has loaded or built with this model id, if any (the embedded emulator
        publishes its template when a device first announces the id)."""
        for codec in (*self._files.values(), *self._defaults.values()):
            if codec.model_id == model_id:
                return codec
        return None

    def for_objects(self, instances: tuple[Lwm2mPath, ...], versions: dict[int, str | None]) -> Codec:
        """The default codec for these object instances; devices of the same shape share one."""
        key = (tuple(sorted(instances)), tuple(sorted(versions.items())))
        codec = self._defaults.get(key)
        if codec is None:
            codec = default_codec(instances, self.registry, versions=versions, overrides=self.overrides)
            if self.model_id:
                codec = dataclasses.replace(codec, model_id=self.model_id)
            else:
                self._count_template(codec.model_id)
            if len(self._defaults) < 1024:
                self._defaults[key] = codec
            self._new(codec)
        return codec

    def _count_template(self, model_id: str) -> None:
        """Each object list makes its own template; say so when a fleet makes many of them."""
        if model_id in self._templates or len(self._templates) > APPLICATION_TEMPLATES:
            return
        self._templates.add(model_id)
        count = len(self._templates)
        if count % TEMPLATE_WARNING_STEP == 0 or count > APPLICATION_TEMPLATES:
            log.warning(
                "%d distinct device templates so far (one per object list); an IoT Central application "
                "holds at most %d: set codec.model_id for one fleet template (docs/codec.md)",
                count,
                APPLICATION_TEMPLATES,
            )

    def for_device(self, codec_file: str | None, objects: RegisteredObjects | None) -> Codec | None:
        """A device's codec: the file its import entry names, else the default codec for its objects;
        None for a device without a registration (plain CBOR sensors name their own telemetry)."""
        if codec_file:
            return self.load(Path(codec_file))
        if objects is None:
            return None
        return self.for_objects(objects.instances, dict(objects.objects))
