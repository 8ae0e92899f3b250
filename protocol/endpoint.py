"""Where a broker is and how to log in: parsed once from a URL such as
``mqtt://user:secret@127.0.0.1:1883`` or ``mqtts://broker.example:8883``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import unquote, urlsplit

from protocol.errors import ProtocolError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class InvalidEndpointError(ProtocolError):
    code = "invalid_mqtt_url"


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> MqttEndpoint:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS:
            raise InvalidEndpointError(
                f"MQTT URL must start with mqtt:// or mqtts://, got {parts.scheme!r}",
                value=parts.scheme,
            )
        if not parts.hostname:
            raise InvalidEndpointError("MQTT URL has no host", value=parts.netloc)
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError as exc:
            raise InvalidEndpointError(f"MQTT URL port: {exc}", value=parts.netloc) from exc
        return cls(
            host=parts.hostname,
            port=port,
            tls=parts.scheme == "mqtts",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def with_credentials(self, username: str, password: str) -> MqttEndpoint:
        return replace(self, username=username, password=password)

    def __str__(self) -> str:
        """The URL without the password, for logs and banners."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"
