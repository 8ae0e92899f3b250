"""The embedded MQTT broker (amqtt) for `fleetlink up` and the test fixtures."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from amqtt.broker import Broker

from broker.credentials import CredentialVerifier

log = logging.getLogger(__name__)

# What amqtt logs, at ERROR, when a TCP connection closes before sending CONNECT: health
# probes, load balancer checks and port scans. Not an error of the broker; kept at DEBUG.
_PROBE_NOISE = ("No data to decode MQTT packet fixed header",)


class _ProbeNoiseFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(noise in message for noise in _PROBE_NOISE):
            return log.isEnabledFor(logging.DEBUG)
        return True


_PROBE_FILTER = _ProbeNoiseFilter()

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1883


class EmbeddedBroker:
    def __init__(
        self,
        verifier: CredentialVerifier,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        max_connections: int = 0,
    ) -> None:
        self.host = host
        self.port = port
        self.denials: Counter[str] = Counter()
        self._config: dict[str, Any] = {
            "listeners": {
                "default": {
                    "type": "tcp",
                    "bind": f"{host}:{port}",
                    "max_connections": max_connections,
                }
            },
            "plugins": {
                "broker.amqtt_plugin.FleetLinkPolicyPlugin": {
                    "verifier": verifier,
                    "denials": self.denials,
                },
            },
        }
        self._broker: Broker | None = None

    async def start(self) -> None:
        logging.getLogger("amqtt.broker").addFilter(_PROBE_FILTER)
        self._broker = Broker(self._config)
        await self._broker.start()
        log.info("embedded MQTT broker listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._broker is not None:
            broker, self._broker = self._broker, None
            await broker.shutdown()
