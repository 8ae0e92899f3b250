"""amqtt's Broker with two fixes FleetLink needs: authenticate before touching sessions, and
disconnect a vehicle on demand (revocation).

amqtt 0.12 looks up the session named by a CONNECT's client id *before* it authenticates: with
clean_session it deletes that session, otherwise it overwrites its will and credentials, and then
takes the live connection over even when authentication fails. A VIN is printed on the
windscreen, so anyone could knock any car offline. Here the fresh CONNECT is authenticated first
and refused with CONNACK "not authorised" before any existing session is looked at.

The override mirrors ``Broker._initialize_client_session`` of amqtt 0.12 (pinned < 0.13 in
pyproject.toml); ``tests/broker/test_vehicle_security.py`` fails if an upgrade changes it.
"""

from __future__ import annotations

import logging

from amqtt.broker import Broker
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import Session

log = logging.getLogger(__name__)

NOT_AUTHORISED_NOTE = "FleetLink: connection not authorised"
# Marks the session object whose CONNECT we already authenticated, so amqtt's own second check
# (in _handle_client_session) reuses that result: re-checking could refuse a connection after
# amqtt had already taken the live session over.
_PREAUTHENTICATED = "fleetlink.preauthenticated"


class HardenedBroker(Broker):  # type: ignore[misc]
    async def _initialize_client_session(
        self,
        reader: object,
        writer: object,
        remote_address: str,
        remote_port: int,
    ) -> tuple[BrokerProtocolHandler, Session]:
        try:
            handler, session = await BrokerProtocolHandler.init_from_connect(
                reader, writer, self.plugins_manager
            )
        except (AMQTTError, MQTTError, NoDataError) as exc:
            # As amqtt does: a connection that never sent a CONNECT is dropped quietly.
            raise AMQTTError(exc) from exc

        # First of all: is this CONNECT who it claims to be? (fresh session object, nothing shared)
        if not await self._authenticate(session, None):
            handler.attach(session, reader, writer)
            await handler.mqtt_connack_authorize(False)
            await writer.close()  # type: ignore[attr-defined]
            raise AMQTTError(NOT_AUTHORISED_NOTE)

        # From here on, amqtt 0.12's own session handling.
        if session.clean_session:
            if session.client_id:
                await self._delete_session(session.client_id)
            else:
                session.client_id = _generated_client_id()
            session.parent = 0
        elif session.client_id in self._sessions:
            existing, _ = self._sessions[session.client_id]
            existing.will_flag = session.will_flag
            existing.will_message = session.will_message
            existing.will_topic = session.will_topic
            existing.will_qos = session.will_qos
            existing.will_retain = session.will_retain
            existing.keep_alive = session.keep_alive
            existing.username = session.username
            existing.password = session.password
            existing.ssl_object = session.ssl_object
            # What our plugin recorded about this login (its proven identity).
            existing.attributes.update(
                {k: v for k, v in session.attributes.items() if k.startswith("fleetlink.")}
            )
            session = existing
            session.parent = 1
        else:
            session.parent = 0
        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        session.attributes[_PREAUTHENTICATED] = True
        return handler, session

    async def _authenticate(self, session: Session, listener: object) -> bool:
        if session.attributes.pop(_PREAUTHENTICATED, False):
            return True
        result: bool = await super()._authenticate(session, listener)
        return result

    async def disconnect_client(self, client_id: str) -> bool:
        """Close the live connection of ``client_id`` (its will is published, as for any
        abnormal disconnect). False if it has no session.

        Not gated on the session's state: after a take-over amqtt marks the shared session
        disconnected although the new connection is live. ``_sessions`` holds the newest
        connection's handler, which is the one to close.
        """
        entry = self._sessions.get(client_id)
        if entry is None:
            return False
        _, handler = entry
        await handler.handle_connection_closed()
        return True


def _generated_client_id() -> str:
    from amqtt.utils import gen_client_id

    client_id: str = gen_client_id()
    return client_id
