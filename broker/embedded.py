"""The embedded MQTT broker (amqtt) for `fleetlink up` and the test fixtures."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.amqtt_broker import NOT_AUTHORISED_NOTE, HardenedBroker
from broker.credentials import CertificateVerifier, CredentialVerifier
from broker.throttle import LoginThrottle

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883

# What amqtt logs when a TCP connection closes before sending CONNECT (health probes, load
# balancer checks, port scans), and its echo of a refusal we have already logged as a
# structured ``broker.denied`` event. Neither is an error of the broker; kept at DEBUG.
_NOISE = ("No data to decode MQTT packet fixed header", NOT_AUTHORISED_NOTE)


class _NoiseFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(noise in message for noise in _NOISE):
            return log.isEnabledFor(logging.DEBUG)
        return True


_NOISE_FILTER = _NoiseFilter()


@dataclass(frozen=True)
class TlsListener:
    """Mutual TLS: vehicles present a client certificate issued by the fleet CA."""

    port: int
    certfile: Path  # the broker's server certificate
    keyfile: Path
    cafile: Path  # the fleet CA, which client certificates must chain to


class EmbeddedBroker:
    def __init__(
        self,
        verifier: CredentialVerifier,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        tls: TlsListener | None = None,
        certificates: CertificateVerifier | None = None,
        throttle: LoginThrottle | None = None,
        max_connections: int = 0,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.denials: Counter[str] = Counter()
        self.connections: Counter[str] = Counter()  # live connections per client id
        listeners: dict[str, Any] = {
            "default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": max_connections}
        }
        if tls is not None:
            # amqtt requests a client certificate (CERT_OPTIONAL) and verifies any it gets
            # against cafile; without one, a client falls back to username/password.
            listeners["tls"] = {
                "type": "tcp",
                "bind": f"{host}:{tls.port}",
                "ssl": True,
                "certfile": str(tls.certfile),
                "keyfile": str(tls.keyfile),
                "cafile": str(tls.cafile),
            }
        self._config: dict[str, Any] = {
            "listeners": listeners,
            "plugins": {
                "broker.amqtt_plugin.FleetLinkPolicyPlugin": {
                    "verifier": verifier,
                    "certificates": certificates,
                    "denials": self.denials,
                    "connections": self.connections,
                    "throttle": throttle,
                },
            },
        }
        self._broker: HardenedBroker | None = None

    async def start(self) -> None:
        logging.getLogger("amqtt.broker").addFilter(_NOISE_FILTER)
        self._broker = HardenedBroker(self._config)
        await self._broker.start()
        tls = f", mTLS on {self.host}:{self.tls.port}" if self.tls else ""
        log.info("embedded MQTT broker listening on %s:%d%s", self.host, self.port, tls)

    async def disconnect_vehicle(self, vin: str) -> bool:
        """Drop a vehicle's live connection (its client id is its VIN). False if offline."""
        if self._broker is None:
            return False
        if self.connections[vin] <= 0:
            return False
        disconnected = await self._broker.disconnect_client(vin)
        if disconnected:
            log.info("broker.disconnected", extra={"vin": vin, "reason": "revoked"})
        return disconnected

    def connected_clients(self) -> list[str]:
        """Client ids with a live connection (vehicles: their VINs)."""
        return [client_id for client_id, count in self.connections.items() if count > 0]

    async def stop(self) -> None:
        if self._broker is not None:
            broker, self._broker = self._broker, None
            await broker.shutdown()
