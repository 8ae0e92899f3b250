"""The smallest MQTT 3.1.1 client the ingest benchmark's load needs: CONNECT with a username and
password and a persistent session, QoS 1 PUBLISH, PUBACK, PINGREQ, DISCONNECT; nothing else
(no subscriptions, no reconnect, no resend).

Why not aiomqtt or paho: with thousands of connections and messages of ~100 KB, the cost is in
the client, not in the protocol. Measured on the 2-core development machine: 6,000 idle aiomqtt
clients alone take 0.16 core (a housekeeping wake-up per client and second) and 6 s to connect;
with paho driven directly from asyncio the publisher spent about 0.6 ms of CPU per message (paho
copies each payload twice and decodes every PUBACK through its MQTT 5 property classes), most of
a core at the benchmark's default 1,250 messages/s. This client hands a message to the kernel as
the list of byte strings it was assembled from (``socket.sendmsg``, no copy in Python) and reads
a PUBACK with a few slice operations; the publisher now spends 0.12-0.16 ms per message, about a
third of it in the kernel.

One :class:`Connection` per car, all on one asyncio loop: the socket is non-blocking, watched
for reading (CONNACK, PUBACK, PINGRESP) and, only while the kernel did not take a whole
message, for writing.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

# Fixed-header first bytes (MQTT 3.1.1, section 2.2).
CONNECT = 0x10
CONNACK = 0x20
PUBLISH_QOS1 = 0x32
PUBACK = 0x40
PINGREQ = b"\xc0\x00"
PINGRESP = 0xD0
DISCONNECT = b"\xe0\x00"
_IOV_MAX = 1024  # Linux: at most this many buffers per sendmsg
_READ_SIZE = 64 * 1024
_MAX_LENGTH_BYTES = 4

Token = TypeVar("Token")


class MqttProtocolError(ConnectionError):
    """The broker refused the connection or sent something that is not MQTT 3.1.1."""


def remaining_length(length: int) -> bytes:
    """The variable-length "remaining length" of a fixed header (section 2.2.3)."""
    if not 0 <= length < 128**_MAX_LENGTH_BYTES:
        raise ValueError(f"MQTT packet too long: {length} bytes")
    out = bytearray()
    while True:
        length, digit = divmod(length, 128)
        out.append(digit | 0x80 if length else digit)
        if not length:
            return bytes(out)


def _string(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def connect_packet(client_id: str, username: str, password: str, keepalive_s: int) -> bytes:
    """CONNECT with user name and password, clean session 0 (a persistent session, as a real
    telematics unit keeps), no will."""
    flags = 0x80 | 0x40  # user name, password
    body = (
        _string("MQTT")
        + bytes([4, flags])
        + keepalive_s.to_bytes(2, "big")
        + _string(client_id)
        + _string(username)
        + _string(password)
    )
    return bytes([CONNECT]) + remaining_length(len(body)) + body


def publish_header(topic: bytes, packet_id: int, payload_size: int) -> bytes:
    """Everything of a QoS 1 PUBLISH before its payload; ``topic`` as from :func:`topic_field`."""
    return (
        bytes([PUBLISH_QOS1])
        + remaining_length(len(topic) + 2 + payload_size)
        + topic
        + packet_id.to_bytes(2, "big")
    )


def topic_field(topic: str) -> bytes:
    return _string(topic)


class Connection(Generic[Token]):
    """One client connection. ``on_ack(token)`` is called for every PUBACK with what
    :meth:`publish` was given; ``on_lost(tokens)`` once, with the tokens still unacknowledged,
    when the connection ends (the broker closed it, an error, or :meth:`close`)."""

    def __init__(
        self,
        client_id: str,
        username: str,
        password: str,
        *,
        keepalive_s: int,
        on_ack: Callable[[Token], None],
        on_lost: Callable[[list[Token]], None],
    ) -> None:
        self._connect = connect_packet(client_id, username, password, keepalive_s)
        self.keepalive_s = keepalive_s
        self._on_ack = on_ack
        self._on_lost = on_lost
        self._loop = asyncio.get_running_loop()
        self._sock: socket.socket | None = None
        self._connack: asyncio.Future[None] = self._loop.create_future()
        self._inbox = bytearray()
        self._backlog: list[bytes | memoryview] = []  # not yet taken by the kernel
        self._pending: dict[int, Token] = {}  # packet id -> token, until its PUBACK
        self._next_id = 0
        self._writing = False  # the writer callback is registered
        self.last_sent = 0.0  # loop time of the last write, for keepalive

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def connect(self, host: str, port: int, timeout_s: float) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        # Each packet goes out in one sendmsg; Nagle would only hold back its last segment.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await asyncio.wait_for(self._loop.sock_connect(sock, (host, port)), timeout_s)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._loop.add_reader(sock, self._readable)
        self._send([self._connect], len(self._connect))
        await asyncio.wait_for(self._connack, timeout_s)

    def publish(self, topic: bytes, parts: Sequence[bytes], size: int, token: Token) -> bool:
        """Send a QoS 1 message whose payload is ``b"".join(parts)`` (``size`` bytes) to
        ``topic`` (a :func:`topic_field`). False when the connection is gone."""
        if self._sock is None:
            return False
        packet_id = self._packet_id()
        self._pending[packet_id] = token
        header = publish_header(topic, packet_id, size)
        self._send([header, *parts], len(header) + size)
        return True

    def ping_if_idle(self) -> None:
        """PINGREQ when nothing was sent for half the keepalive, so the broker keeps us."""
        if self._sock is not None and self._loop.time() - self.last_sent > self.keepalive_s / 2:
            self._send([PINGREQ], len(PINGREQ))

    def close(self) -> None:
        """DISCONNECT (when it can be sent at once) and close; the session stays on the broker."""
        if self._sock is not None and not self._backlog:
            self._send([DISCONNECT], len(DISCONNECT))
        self._lost(None)

    # ------------------------------------------------------------------ writing

    def _packet_id(self) -> int:
        for _ in range(65535):
            self._next_id = self._next_id % 65535 + 1
            if self._next_id not in self._pending:
                return self._next_id
        raise MqttProtocolError("65535 messages in flight")

    def _send(self, parts: list[bytes], size: int) -> None:
        """Write one packet of ``size`` bytes, given as ``parts``."""
        sock = self._sock
        if sock is None:
            return
        self.last_sent = self._loop.time()
        if self._backlog or len(parts) > _IOV_MAX:
            self._backlog.extend(parts)
            self._flush()
            return
        # The usual case: the kernel takes the whole packet at once, nothing to keep.
        try:
            sent = sock.sendmsg(parts)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._lost(exc)
            return
        if sent < size:
            self._backlog.extend(parts)
            self._consume(sent)
            self._wait_writable(sock)

    def _flush(self) -> None:
        """Send from the backlog until it is empty or the kernel's buffer is full."""
        sock = self._sock
        while sock is not None and self._backlog:
            chunk = self._backlog[:_IOV_MAX]
            try:
                sent = sock.sendmsg(chunk)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                self._lost(exc)
                return
            if sent < sum(map(len, chunk)):
                self._consume(sent)
                self._wait_writable(sock)
                return
            del self._backlog[: len(chunk)]
        if sock is not None and self._writing:
            self._loop.remove_writer(sock)
            self._writing = False

    def _consume(self, sent: int) -> None:
        """Drop ``sent`` bytes from the front of the backlog."""
        backlog = self._backlog
        done = 0
        for part in backlog:
            if sent < len(part):
                break
            sent -= len(part)
            done += 1
        del backlog[:done]
        if sent:
            backlog[0] = memoryview(backlog[0])[sent:]

    def _wait_writable(self, sock: socket.socket) -> None:
        if not self._writing:
            self._loop.add_writer(sock, self._flush)
            self._writing = True

    # ------------------------------------------------------------------ reading

    def _readable(self) -> None:
        if self._sock is None:
            return
        try:
            data = self._sock.recv(_READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(exc)
            return
        if not data:
            self._lost(ConnectionResetError("the broker closed the connection"))
            return
        self._inbox += data
        try:
            self._parse()
        except MqttProtocolError as exc:
            self._lost(exc)

    def _parse(self) -> None:
        inbox = self._inbox
        while len(inbox) >= 2:
            length = 0
            position = 1
            while True:
                if position >= len(inbox):
                    return  # the length is not complete yet
                digit = inbox[position]
                length += (digit & 0x7F) << (7 * (position - 1))
                position += 1
                if not digit & 0x80:
                    break
                if position > _MAX_LENGTH_BYTES:
                    raise MqttProtocolError("malformed remaining length")
            if len(inbox) < position + length:
                return
            kind = inbox[0] & 0xF0
            body = bytes(inbox[position : position + length])
            del inbox[: position + length]
            self._packet(kind, body)

    def _packet(self, kind: int, body: bytes) -> None:
        if kind == PUBACK:
            token = self._pending.pop(int.from_bytes(body[:2], "big"), None)
            if token is not None:
                self._on_ack(token)
        elif kind == CONNACK:
            if len(body) < 2 or body[1] != 0:
                code = body[1] if len(body) > 1 else None
                raise MqttProtocolError(f"connection refused (CONNACK return code {code})")
            if not self._connack.done():
                self._connack.set_result(None)
        # PINGRESP needs nothing; nothing else is sent to a client that never subscribes.

    # ------------------------------------------------------------------ the end

    def _lost(self, exc: BaseException | None) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        self._loop.remove_reader(sock)
        if self._writing:
            self._loop.remove_writer(sock)
            self._writing = False
        sock.close()
        self._backlog.clear()
        if not self._connack.done():
            if exc is None:  # our own close: whoever awaits the CONNACK is being torn down too
                self._connack.cancel()
            else:
                self._connack.set_exception(exc)
        unacknowledged = list(self._pending.values())
        self._pending.clear()
        self._on_lost(unacknowledged)
