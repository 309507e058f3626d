"""The emulator as one object: state, TLS listener, DPS, hub, REST API; started and stopped as a unit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from emulator import assignment
from emulator import mqtt_codec as mqtt
from emulator.activity import Activity
from emulator.certs import ServerTls, ensure_server_tls, server_ssl_context
from emulator.commands import CommandHistory
from emulator.config import EmulatorConfig
from emulator.connection import ClientConnection, Session
from emulator.dps import DpsService, parse_dps_username
from emulator.faults import Faults
from emulator.https_device import build_device_app
from emulator.hub import HubService, parse_hub_username
from emulator.limits import ServiceLimits
from emulator.rest import build_app
from emulator.rest_guard import CURRENT_API_VERSION
from emulator.state import Application, Device, load_application, new_api_token, save_application

log = logging.getLogger("emulator")

SAVE_INTERVAL = 0.5  # seconds; state changes are written at most this often


class Emulator:
    def __init__(
        self, config: EmulatorConfig, *, template_source: assignment.TemplateSource | None = None
    ) -> None:
        """`template_source(model_id)`: a device template to publish when a device announces a model id
        nobody published (the embedded emulator of `serve` publishes the translator's own export)."""
        self.config = config
        self._template_source = template_source
        self.faults = Faults()
        self.application: Application = load_application(
            config.state_dir,
            id_scope=config.id_scope,
            primary=config.group_primary_key,
            secondary=config.group_secondary_key,
        )
        if config.auth and not config.api_token and not self.application.api_token:
            self.application.api_token = new_api_token(self.application.id_scope)
        self._dirty = asyncio.Event()
        self.commands = CommandHistory()
        self.limits = ServiceLimits(config.limit_settings(), time.monotonic)
        self.activity = Activity()
        self.dps = DpsService(
            self.application,
            config,
            self.faults,
            on_change=self.changed,
            assign_template=self.assign_template,
            limits=self.limits,
            activity=self.activity,
        )
        self.hub = HubService(
            self.application,
            config,
            self.faults,
            on_change=self.changed,
            assign_template=self.assign_template,
            limits=self.limits,
            activity=self.activity,
        )
        self.tls: ServerTls | None = None
        self._mqtt_server: asyncio.Server | None = None
        self._connections: set[ClientConnection] = set()
        self._connection_tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._device_runner: web.AppRunner | None = None
        self._saver: asyncio.Task[None] | None = None
        self._outage_task: asyncio.Task[None] | None = None
        self.mqtt_port = config.mqtt_port
        self.http_port = config.http_port
        self.https_port = config.https_port

    # -- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self.tls = ensure_server_tls(self.config.state_dir, list(self.config.hub_names))
        save_application(self.config.state_dir, self.application)
        await self._open_listener()
        self._runner = web.AppRunner(build_app(self), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.http_port)
        await site.start()
        # aiohttp exposes the bound port only through its server (asyncio's or uvloop's Server class).
        sockets = getattr(site._server, "sockets", None)
        if sockets:
            self.http_port = sockets[0].getsockname()[1]
        self.https_port = await self._open_device_api()
        self._saver = asyncio.create_task(self._save_loop(), name="emulator-save")
        log.info(
            "emulator ready: MQTT (DPS and hub) on %s:%d, the hub's HTTPS device API on %d, REST on "
            "http://%s:%d, CA %s",
            self.config.host,
            self.mqtt_port,
            self.https_port,
            self.config.host,
            self.http_port,
            self.tls.ca_path,
        )

    async def _open_device_api(self) -> int:
        assert self.tls is not None
        self._device_runner = web.AppRunner(build_device_app(self), access_log=None)
        await self._device_runner.setup()
        context = server_ssl_context(self.tls, self.config.x509_enrollment_ca)
        site = web.TCPSite(self._device_runner, self.config.host, self.config.https_port, ssl_context=context)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        return int(sockets[0].getsockname()[1]) if sockets else self.config.https_port

    async def stop(self) -> None:
        for task in (self._outage_task, self._saver):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._close_listener()
        self.drop_all("emulator stopping")
        if self._connection_tasks:
            await asyncio.wait(self._connection_tasks, timeout=5)
        for task in self._connection_tasks:
            task.cancel()
        for runner in (self._runner, self._device_runner):
            if runner is not None:
                await runner.cleanup()
        save_application(self.config.state_dir, self.application)
        log.info("emulator stopped")

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- MQTT listener ----------------------------------------------------------------------------

    async def _open_listener(self) -> None:
        assert self.tls is not None
        context = server_ssl_context(self.tls, self.config.x509_enrollment_ca)
        self._mqtt_server = await asyncio.start_server(
            self._on_client,
            self.config.host,
            self.mqtt_port,
            ssl=context,
            ssl_handshake_timeout=self.config.connect_timeout,
            reuse_address=True,
            # A fleet reconnecting at once must queue, not see SYNs dropped (asyncio's default is 100).
            backlog=4096,
        )
        self.mqtt_port = self._mqtt_server.sockets[0].getsockname()[1]

    async def _close_listener(self) -> None:
        if self._mqtt_server is not None:
            self._mqtt_server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._mqtt_server.wait_closed(), 1)
            self._mqtt_server = None

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = ClientConnection(
            reader,
            writer,
            open_session=self._open_session,
            max_message_bytes=self.config.max_message_bytes,
            max_subscriptions=self.config.max_subscriptions,
            max_keep_alive=self.config.max_keep_alive,
            connect_timeout=self.config.connect_timeout,
        )
        self._connections.add(connection)
        task = asyncio.current_task()
        if task is not None:
            self._connection_tasks.add(task)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)
            if task is not None:
                self._connection_tasks.discard(task)

    def _open_session(self, connection: ClientConnection, connect: mqtt.Connect) -> Session | int:
        username = connect.username or ""
        dps = parse_dps_username(username)
        if dps is not None:
            return self.dps.open_session(connection, connect, *dps)
        hub = parse_hub_username(username)
        if hub is not None:
            return self.hub.open_session(connection, connect, hub)
        log.warning("connection %s: username %r is neither DPS nor hub form", connect.client_id, username)
        return mqtt.CONNACK_BAD_CREDENTIALS

    # -- templates and the API token ----------------------------------------------------------------

    def api_token(self) -> str:
        """The Authorization header the REST API requires ('' when auth is off)."""
        if not self.config.auth:
            return ""
        return self.config.api_token or self.application.api_token

    def publish_template(self, template_id: str, body: dict[str, Any]) -> dict[str, Any]:
        stored = assignment.publish(self.application, template_id, body)
        self.changed()
        return stored

    def assign_template(self, device: Device, model_id: str) -> None:
        if assignment.assign(self.application, device, model_id, self._template_source):
            self.changed()

    # -- persistence ------------------------------------------------------------------------------

    def changed(self) -> None:
        self._dirty.set()

    async def _save_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                save_application(self.config.state_dir, self.application)
            except OSError as error:
                log.error("cannot save state to %s: %s", self.config.state_dir, error)
            await asyncio.sleep(SAVE_INTERVAL)

    # -- faults -----------------------------------------------------------------------------------

    def drop_all(self, reason: str) -> int:
        connections = list(self._connections)
        for connection in connections:
            connection.close(reason)
        return len(connections)

    def throttle(self, seconds: float, scope: str) -> None:
        until = time.time() + seconds
        if scope in ("dps", "all"):
            self.faults.dps_throttled_until = until
        if scope in ("hub", "all"):
            self.faults.hub_throttled_until = until
        log.warning("fault: throttling %s for %.0f s", scope, seconds)

    def delay_acks(self, seconds: float) -> None:
        self.faults.acks_delayed_until = time.time() + seconds
        log.warning("fault: telemetry PUBACKs held back for %.0f s", seconds)

    def expire_tokens(self) -> int:
        """Make every SAS token in use now invalid, and drop the connections that used them."""
        dropped = 0
        for session in list(self.hub.sessions.values()):
            token = session.token
            if token:
                self.faults.revoked_tokens.add(token)
            session.connection.close("SAS token expired (fault injection)")
            dropped += 1
        log.warning("fault: expired the tokens of %d connections", dropped)
        return dropped

    def move_device(self, device: Device, hub: str | None) -> str:
        hubs = self.config.hub_names
        if hub is None:
            if len(hubs) < 2:
                raise ValueError("only one hub is configured (set hub_names)")
            current = hubs.index(device.assigned_hub) if device.assigned_hub in hubs else -1
            hub = hubs[(current + 1) % len(hubs)]
        elif hub not in hubs:
            raise ValueError(f"no hub named {hub!r}")
        device.assigned_hub = hub
        self.changed()
        self.hub.disconnect(device.device_id, f"device moved to {hub}")
        log.warning("fault: %s moved to %s", device.device_id, hub)
        return hub

    async def outage(self, seconds: float) -> None:
        """Refuse every connection (closed listener) for `seconds`, and drop the open ones."""
        self.faults.outage_until = time.time() + seconds
        if self._outage_task is not None:
            self._outage_task.cancel()
        await self._close_listener()
        dropped = self.drop_all("outage (fault injection)")
        log.warning("fault: outage for %.0f s, dropped %d connections", seconds, dropped)
        self._outage_task = asyncio.create_task(self._end_outage(seconds), name="emulator-outage")

    async def _end_outage(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self._reopen()

    async def _reopen(self) -> None:
        self.faults.outage_until = 0.0
        if self._mqtt_server is None:
            await self._open_listener()
            log.warning("fault: outage over, accepting connections again")

    async def clear_faults(self) -> None:
        self.faults.clear()
        if self._outage_task is not None:
            self._outage_task.cancel()
            self._outage_task = None
        await self._reopen()

    # -- facts for users and tests ----------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        assert self.tls is not None
        return {
            "idScope": self.application.id_scope,
            "groupPrimaryKey": self.application.group_primary_key,
            "groupSecondaryKey": self.application.group_secondary_key,
            "hubs": list(self.config.hub_names),
            "host": self.config.host,
            "mqttPort": self.mqtt_port,
            "httpPort": self.http_port,
            "httpsPort": self.https_port,
            "hubSessions": len(self.hub.sessions),
            "caPath": str(Path(self.tls.ca_path).resolve()),
            "x509EnrollmentCa": str(self.config.x509_enrollment_ca or "") or None,
            "apiToken": self.api_token() or None,
            "apiVersion": CURRENT_API_VERSION,
        }
