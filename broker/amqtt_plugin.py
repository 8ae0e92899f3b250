"""FleetLink's policy inside amqtt: authentication against a CredentialVerifier and per-VIN
topic ACLs (``broker.policy``).

amqtt's own plugins are not enough here: its ACL plugin lists topics per user with no patterns,
and its taboo plugin lets a user named ``admin`` do anything. One plugin does both jobs because
the ACL needs the identity that authentication proved; identities are kept per client id and
only for connections that authenticated.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from broker.policy import (
    Identity,
    VehicleIdentity,
    is_safe_identity,
    may_publish,
    may_receive,
    may_subscribe,
)

log = logging.getLogger("fleetlink.broker")


class DenyReason:
    NO_CREDENTIALS = "no_credentials"
    UNSAFE_IDENTITY = "unsafe_identity"
    BAD_CREDENTIALS = "bad_credentials"
    CLIENT_ID_MISMATCH = "client_id_mismatch"
    WILL_TOPIC_FORBIDDEN = "will_topic_forbidden"
    PUBLISH_FORBIDDEN = "publish_forbidden"
    SUBSCRIBE_FORBIDDEN = "subscribe_forbidden"
    NOT_AUTHENTICATED = "not_authenticated"


class FleetLinkPolicyPlugin(BaseAuthPlugin, BaseTopicPlugin):  # type: ignore[misc]
    @dataclass
    class Config:
        # Typed Any: amqtt builds this with dacite, which cannot check Protocols or Counter.
        verifier: Any = None  # a broker.credentials.CredentialVerifier
        denials: Any = None  # a Counter[str] shared with the runtime

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        config = self.context.config
        if config is None or getattr(config, "verifier", None) is None:
            raise ValueError("FleetLinkPolicyPlugin needs a 'verifier' in its config")
        self._verifier = config.verifier
        self.denials: Counter[str] = config.denials if config.denials is not None else Counter()
        self._identities: dict[str, Identity] = {}

    def _deny(self, reason: str, session: Session | None, **detail: object) -> bool:
        self.denials[reason] += 1
        log.info(
            "broker.denied",
            extra={
                "reason": reason,
                "client_id": session.client_id if session else None,
                "username": session.username if session else None,
                "remote": session.remote_address if session else None,
                **detail,
            },
        )
        return False

    async def authenticate(self, *, session: Session) -> bool | None:
        # A failed attempt must not touch the identity of a live connection with the same
        # client id: only a successful login (below) or a disconnect changes it.
        client_id = session.client_id
        if not session.username or session.password is None:
            return self._deny(DenyReason.NO_CREDENTIALS, session)
        if not is_safe_identity(session.username) or not is_safe_identity(client_id):
            return self._deny(DenyReason.UNSAFE_IDENTITY, session)
        password = session.password
        if isinstance(password, bytes | bytearray):
            password = password.decode("utf-8", "replace")
        identity = await self._verifier.verify(session.username, password)
        if identity is None:
            return self._deny(DenyReason.BAD_CREDENTIALS, session)
        if isinstance(identity, VehicleIdentity) and client_id != identity.vin:
            return self._deny(DenyReason.CLIENT_ID_MISMATCH, session)
        if (
            session.will_flag
            and session.will_topic
            and not may_publish(identity, session.will_topic)
        ):
            return self._deny(DenyReason.WILL_TOPIC_FORBIDDEN, session, topic=session.will_topic)
        assert client_id is not None
        self._identities[client_id] = identity
        return True

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool | None:
        identity = self._identities.get(session.client_id or "") if session else None
        if identity is None or topic is None:
            return self._deny(DenyReason.NOT_AUTHENTICATED, session, topic=topic)
        if action == Action.PUBLISH:
            return may_publish(identity, topic) or self._deny(
                DenyReason.PUBLISH_FORBIDDEN, session, topic=topic
            )
        if action == Action.SUBSCRIBE:
            return may_subscribe(identity, topic) or self._deny(
                DenyReason.SUBSCRIBE_FORBIDDEN, session, topic=topic
            )
        # RECEIVE: silently filtered; the subscribe check already counted any attempt.
        return may_receive(identity, topic)

    async def on_broker_client_disconnected(
        self, *, client_id: str, client_session: Session
    ) -> None:
        self._identities.pop(client_id, None)
