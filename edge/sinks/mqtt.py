"""MQTT: each frame's poses published to a broker, the way IoT fleets move data (paho-mqtt).

Topics: ``<prefix>/<stream>/poses`` carries one JSON record per frame (the same record as JSON
lines and ``/poses``, plus ``stream``); ``<prefix>/status`` is a retained ``online`` /
``offline``, with ``offline`` as the last will, so a subscriber knows whether the device is up.

The broker never stalls the pipeline: paho's network thread connects, reconnects with
backoff and sends; ``handle`` only hands a message over. While the broker is away, or when
more than ``max_queued`` messages wait for it, a frame's message is dropped here and counted
(``dropped``), so what a subscriber misses is exactly what this sink counted. With QoS 1 or 2
a message handed over is kept by paho until the broker acknowledges it, and sent again after
a reconnect. Credentials and TLS files come from the config (a password file, not a password
on the command line).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Optional

from .base import Result, Sink

__all__ = ["MqttSink"]

log = logging.getLogger("openpose_plus.sinks.mqtt")


class MqttSink(Sink):
    name = "mqtt"

    def __init__(self, host: str, port: int = 1883, topic_prefix: str = "openpose-plus", stream: str = "default",
                 qos: int = 1, retain: bool = False, client_id: str = "", username: str = "",
                 password_file: str = "", tls_ca: str = "", tls_cert: str = "", tls_key: str = "",
                 keepalive: int = 30, max_queued: int = 1000, reconnect_min: float = 0.5,
                 reconnect_max: float = 30.0, connect_wait: float = 0.0) -> None:
        if qos not in (0, 1, 2):
            raise ValueError("mqtt sink: qos must be 0, 1 or 2, got %r" % (qos,))
        if not host:
            raise ValueError("mqtt sink: no broker host")
        if not 0 < int(port) < 65536:
            raise ValueError("mqtt sink: port %r is not 1-65535" % (port,))
        if bool(tls_cert) != bool(tls_key):
            raise ValueError("mqtt sink: tls_cert and tls_key go together")
        self.host, self.port = host, int(port)
        self.prefix = topic_prefix.rstrip("/")
        self.stream = stream
        self.qos, self.retain = qos, retain
        self.client_id = client_id
        self.username, self.password_file = username, password_file
        self.tls_ca, self.tls_cert, self.tls_key = tls_ca, tls_cert, tls_key
        self.keepalive = keepalive
        self.max_queued = max_queued
        self.reconnect = (reconnect_min, reconnect_max)
        self.connect_wait = float(connect_wait)  # open() waits this long for the broker (a finite run's first frames)
        self.status_topic = self.prefix + "/status"
        self.published = 0      # handed to paho
        self.acknowledged = 0   # confirmed by the broker (QoS 1/2), or written to the socket (QoS 0)
        self.dropped = 0        # never handed over: broker away, or too many waiting
        self.connects = 0
        self.last_error = ""
        self._connected = threading.Event()
        self._status_mids = set()  # the online/offline messages are not frames
        self._client = None
        self._closing = False

    def topic(self, stream: Optional[str] = None) -> str:
        return "%s/%s/poses" % (self.prefix, stream or self.stream)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def health(self):
        """(ok, words) for /healthz and STATUS."""
        if self.connected:
            return True, "connected to %s:%d" % (self.host, self.port)
        return False, "broker %s:%d away (%s); %d messages dropped" % (
            self.host, self.port, self.last_error or "connecting", self.dropped)

    # -- paho's thread ---------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            self.last_error = "refused: %s" % reason_code
            log.error("mqtt: %s:%d refused the connection: %s", self.host, self.port, reason_code)
            return
        self.connects += 1
        self._status_mids.add(client.publish(self.status_topic, "online", qos=1, retain=True).mid)
        self._connected.set()
        log.info("mqtt: connected to %s:%d", self.host, self.port)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was and not self._closing:  # once per change of state, not per retry; not our own goodbye
            self.last_error = "disconnected: %s" % reason_code
            log.warning("mqtt: lost %s:%d (%s); reconnecting", self.host, self.port, reason_code)

    def _on_publish(self, client, userdata, mid, reason_code=None, properties=None) -> None:
        if mid in self._status_mids:
            self._status_mids.discard(mid)
        else:
            self.acknowledged += 1

    # -- the sink --------------------------------------------------------------------------
    def open(self) -> None:
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id)
        if self.username:
            password = None
            if self.password_file:
                with open(self.password_file) as f:
                    password = f.read().strip()
            client.username_pw_set(self.username, password)
        if self.tls_ca or self.tls_cert:
            client.tls_set(ca_certs=self.tls_ca or None, certfile=self.tls_cert or None, keyfile=self.tls_key or None)
        client.will_set(self.status_topic, "offline", qos=1, retain=True)
        client.reconnect_delay_set(*self.reconnect)
        client.max_queued_messages_set(self.max_queued)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        try:
            client.connect_async(self.host, self.port, self.keepalive)
        except (OSError, ValueError) as exc:  # a name that does not resolve: say so, keep trying
            self.last_error = str(exc)
        client.loop_start()
        if self.connect_wait > 0 and not self._connected.wait(self.connect_wait):
            log.warning("mqtt: %s:%d not connected after %.1f s; frames are dropped (and counted) until it is",
                        self.host, self.port, self.connect_wait)

    def handle(self, result: Result) -> None:
        if not self._connected.is_set():
            self.dropped += 1
            return
        import paho.mqtt.client as mqtt

        stream = getattr(result, "stream", None) or self.stream
        record = result.record()
        record["stream"] = stream
        info = self._client.publish(self.topic(stream), json.dumps(record, separators=(",", ":")),
                                    qos=self.qos, retain=self.retain)
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            self.published += 1
        else:  # MQTT_ERR_QUEUE_SIZE (broker slow) or MQTT_ERR_NO_CONN (it just went)
            self.dropped += 1

    def close(self, timeout: float = 5.0) -> None:
        client = self._client
        if client is None:
            return
        if self._connected.is_set():
            self._status_mids.add(client.publish(self.status_topic, "offline", qos=1, retain=True).mid)
            deadline = time.monotonic() + timeout
            while client.want_write() or self.acknowledged < self.published:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
        self._closing = True
        client.disconnect()
        client.loop_stop()
        self._client = None
