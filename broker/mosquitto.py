"""The broker policy rendered for Mosquitto (production brokers). Pure: text in, text out.

Mosquitto's ACL file expresses the per-VIN rules with ``pattern`` lines, where ``%u`` is the
username (the VIN); ``use_username_as_clientid`` makes the client id the username, which is the
"client id must equal the VIN" rule. Both are generated from ``broker.policy`` so the embedded
and the production broker enforce one policy. Writing the files, the database and reloading the
broker live in ``fleetlink.mosquitto_sync``.

Mosquitto 2.0.11 behaviours this module relies on (checked against the real binary):

- With ``per_listener_settings false``, ``password_file``/``acl_file``/``allow_anonymous`` are
  global, and a listener with ``use_identity_as_username true`` takes the username from the
  client certificate's CN and skips the password check, so one password file and one ACL serve
  both listeners.
- ``use_username_as_clientid`` is a per-listener option even then: it must be repeated in each
  listener block, and written before the first ``listener`` it silently creates an extra
  default listener on port 1883.
- SIGHUP re-reads the password file, the ACL and the CRL; password sessions whose entry is gone
  are disconnected, but sessions authenticated by certificate are not re-checked against the
  CRL, hence the ``topic deny #`` block for revoked vehicles (see :func:`render_acl`).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from broker.policy import ServiceRole, service_publish_kinds, service_subscribe_kinds
from protocol.topics import TOPIC_ROOT, VEHICLE_PUBLISH_KINDS, VEHICLE_SUBSCRIBE_KINDS
from protocol.vin import VIN_LENGTH

# Mosquitto's own default for mosquitto_passwd. Device secrets are 256-bit random tokens, so the
# iteration count is not what protects them; keeping it low keeps reconnect storms cheap.
MOSQUITTO_PBKDF2_ITERATIONS = 101
_SALT_BYTES = 12

# Unacknowledged QoS 1 messages the broker sends a client before it waits. Ingest acknowledges
# only after commit and builds the next batch while one commits, so its window must hold two
# batches (FLEETLINK_INGEST_BATCH_MAX_MESSAGES, 500): at 100, an MQTT 5 worker on a shared
# subscription idled half the time (bench ingest --workers 2: 1.14M values/s, 1.55M at 1000).
MAX_INFLIGHT_MESSAGES = 1000
# Per client, what waits beyond the in-flight window. For ingest's session this queue is the
# buffer while ingest is behind (a database outage, a backfill): Mosquitto drops what exceeds
# it, so it is sized by memory, not by a count a busy fleet reaches in seconds (10,000 cars at
# 1 message/s fill 100,000 in 10 s). 4 GiB holds ~2M telemetry messages of ~2 KB.
MAX_QUEUED_MESSAGES = 5_000_000
MAX_QUEUED_BYTES = 4 * 1024**3
# Identities end up in ``user`` lines, ``%u`` patterns and ``name:hash`` lines: no wildcards or
# level separator (they would widen a pattern), no ':' (the password file's separator), no
# whitespace or control characters (line-based formats).
_FORBIDDEN_USERNAME_CHARS = frozenset("+#/:")


class MosquittoConfigError(ValueError):
    """Input that cannot be rendered into a safe Mosquitto configuration."""

    code = "mosquitto_config_invalid"

    def __init__(self, message: str, *, value: str) -> None:
        super().__init__(message)
        self.value = value


class MosquittoUsernameError(MosquittoConfigError):
    code = "mosquitto_username_invalid"


def mosquitto_password_hash(
    secret: str, *, salt: bytes | None = None, iterations: int = MOSQUITTO_PBKDF2_ITERATIONS
) -> str:
    """The ``$7$`` (PBKDF2-SHA512) entry Mosquitto 2.0 reads from a password file."""
    salt = os.urandom(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_username(username: str) -> str:
    """``username`` if it is safe in every Mosquitto file, else :class:`MosquittoUsernameError`."""
    if (
        not username
        or set(username) & _FORBIDDEN_USERNAME_CHARS
        or any(c.isspace() or not c.isprintable() for c in username)
    ):
        raise MosquittoUsernameError(
            f"username {username!r} is empty or contains ':', '+', '#', '/', whitespace or a"
            " control character",
            value=username,
        )
    return username


def check_service_name(name: str) -> str:
    """A service account name: a safe username that can never be mistaken for a VIN (the VIN
    patterns would otherwise grant it a vehicle's topics)."""
    check_username(name)
    if len(name) == VIN_LENGTH and name.isalnum():
        raise MosquittoUsernameError(
            f"service name {name!r} looks like a VIN; use a prefix such as 'svc-'", value=name
        )
    return name


def render_password_file(entries: Iterable[tuple[str, str]]) -> str:
    """``username:hash`` lines, sorted by username, for Mosquitto's ``password_file``."""
    seen: dict[str, str] = {}
    for username, password_hash in entries:
        check_username(username)
        if username in seen:
            raise MosquittoUsernameError(f"duplicate username {username!r}", value=username)
        if not password_hash.startswith(("$6$", "$7$")) or any(c in password_hash for c in ":\r\n"):
            raise MosquittoConfigError(
                f"password hash for {username!r} is not a Mosquitto $6$/$7$ hash", value=username
            )
        seen[username] = password_hash
    return "".join(f"{name}:{seen[name]}\n" for name in sorted(seen))


def render_acl(
    services: Mapping[str, frozenset[ServiceRole]], *, revoked_vins: Iterable[str] = ()
) -> str:
    """The ACL file. ``revoked_vins`` get ``topic deny #``: Mosquitto does not disconnect a
    session authenticated by a client certificate when the CRL changes, so a revoked car that is
    still connected over mutual TLS is at least muted (deny rules win over patterns)."""
    lines = ["# Generated by FleetLink from broker/policy.py; do not edit by hand.", ""]
    for name, roles in sorted(services.items()):
        lines.append(f"user {check_service_name(name)}")
        reads = sorted({k.value for r in roles for k in service_subscribe_kinds(r)})
        writes = sorted({k.value for r in roles for k in service_publish_kinds(r)})
        lines += [f"topic read {TOPIC_ROOT}/+/{kind}" for kind in reads]
        lines += [f"topic write {TOPIC_ROOT}/+/{kind}" for kind in writes]
        lines.append("")
    revoked = sorted({check_username(vin) for vin in revoked_vins})
    if revoked:
        lines.append("# Revoked vehicles: mute sessions that outlive the revocation (mTLS).")
        for vin in revoked:
            lines += [f"user {vin}", "topic deny #", ""]
    lines.append("# Every vehicle: its own topics only (%u is the username, i.e. the VIN).")
    lines += [
        f"pattern write {TOPIC_ROOT}/%u/{kind.value}"
        for kind in sorted(VEHICLE_PUBLISH_KINDS, key=lambda k: k.value)
    ]
    lines += [
        f"pattern read {TOPIC_ROOT}/%u/{kind.value}"
        for kind in sorted(VEHICLE_SUBSCRIBE_KINDS, key=lambda k: k.value)
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class TlsListenerLayout:
    port: int
    cafile: Path
    certfile: Path
    keyfile: Path
    crlfile: Path


@dataclass(frozen=True, slots=True)
class MosquittoLayout:
    """Where everything is. Paths should be absolute: Mosquitto resolves relative paths against
    its working directory, not against the configuration file."""

    bind: str
    mqtt_port: int
    password_file: Path
    acl_file: Path
    persistence_location: Path
    pid_file: Path
    tls: TlsListenerLayout | None = None
    # Mosquitto started as root drops to this account (its default is "mosquitto"); the
    # generated files must be readable by it.
    run_as_user: str | None = None


def _path(value: Path) -> str:
    text = str(value)
    if any(c in text for c in "\r\n"):
        raise MosquittoConfigError(f"path {text!r} contains a line break", value=text)
    return text


def render_config(layout: MosquittoLayout) -> str:
    """mosquitto.conf for Mosquitto 2.0: a password listener and optionally a mutual-TLS one."""
    persistence = _path(layout.persistence_location).rstrip("/") + "/"
    lines = [
        "# Generated by FleetLink (fleetlink broker mosquitto-config); do not edit by hand:",
        "# rerun the command instead. Reload after changes: kill -HUP $(cat PID_FILE).",
        "",
        "# One set of security settings for every listener: the password file and the ACL",
        "# below apply to both, so the two ports cannot drift apart.",
        "per_listener_settings false",
        "# Every client authenticates: a password (vehicle secret or service account) or a",
        "# client certificate issued by the fleet CA.",
        "allow_anonymous false",
        "# username:$7$ PBKDF2-SHA512 hashes of admitted vehicles and service accounts;",
        "# revoked vehicles are absent. Re-read on SIGHUP, which also drops their sessions.",
        f"password_file {_path(layout.password_file)}",
        "# Per-VIN topic rules (pattern ... %u) and service account rights from broker/policy.py.",
        f"acl_file {_path(layout.acl_file)}",
        "",
        "# QoS 1 sessions of offline cars survive broker restarts.",
        "persistence true",
        f"persistence_location {persistence}",
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
        "# A bounded queue per session: commands waiting for a parked car, and everything",
        "# the fleet sends while ingest is behind. Messages beyond it are dropped.",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        f"max_queued_bytes {MAX_QUEUED_BYTES}",
        "# `kill -HUP $(cat ...)` reloads credentials; fleetlink ... --watch does it for you.",
        f"pid_file {_path(layout.pid_file)}",
    ]
    if layout.run_as_user is not None:
        lines.append(f"user {check_username(layout.run_as_user)}")
    lines += [
        "",
        "# Username/password listener.",
        f"listener {layout.mqtt_port} {layout.bind}",
        "# The client id is replaced by the username, so a client id always equals the VIN",
        "# (it must be repeated per listener, even with per_listener_settings false).",
        "use_username_as_clientid true",
    ]
    if layout.tls is not None:
        tls = layout.tls
        lines += [
            "",
            "# Mutual-TLS listener: vehicles present a fleet CA certificate with CN = VIN.",
            f"listener {tls.port} {layout.bind}",
            "# Trust only the fleet CA for client certificates.",
            f"cafile {_path(tls.cafile)}",
            f"certfile {_path(tls.certfile)}",
            f"keyfile {_path(tls.keyfile)}",
            "# Revoked certificate serials; reloaded on SIGHUP. Regenerated by FleetLink before",
            "# its nextUpdate passes (OpenSSL then rejects every client).",
            f"crlfile {_path(tls.crlfile)}",
            "# No certificate, no connection.",
            "require_certificate true",
            "# The certificate CN (the VIN) is the username: the %u ACL patterns apply and any",
            "# username/password sent in CONNECT is ignored.",
            "use_identity_as_username true",
            "use_username_as_clientid true",
            "# Minimum protocol version.",
            "tls_version tlsv1.2",
        ]
    return "\n".join(lines) + "\n"
