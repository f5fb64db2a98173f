"""Test helpers for the stream ingest: a real Mosquitto on a free port, a QoS 1 publisher that counts the broker's
acknowledgements, the ingest as a child process, and waiting on a condition with a deadline (never a fixed sleep)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

REPO_ROOT = Path(__file__).resolve().parent.parent
MOSQUITTO = "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout: float, what: str, interval: float = 0.05, at_least: int | None = None):
    """Poll ``condition()`` until it returns a true value (returned), or with ``at_least`` a number that large, or
    ``timeout`` seconds pass (AssertionError naming ``what`` and the last value seen)."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = condition()
        if (value >= at_least) if at_least is not None else value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {value!r})")


class Mosquitto:
    """A broker with persistence on, listening on 127.0.0.1:<port>; :meth:`restart` stops it with SIGTERM (it saves
    its store) and starts it again on the same port."""

    def __init__(self, directory: Path):
        if not os.path.exists(MOSQUITTO):
            raise RuntimeError(f"{MOSQUITTO} not found (Debian package: mosquitto)")
        self.directory = directory
        self.port = free_port()
        self.config = directory / "mosquitto.conf"
        self.log = directory / "mosquitto.log"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {directory}/",
            # Messages for a subscriber that is away wait in its session: the default caps them at 1,000.
            "max_queued_messages 1000000",
            "max_queued_bytes 0",
            "log_dest stderr",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to `mosquitto`, which cannot write our temporary directory
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=open(self.log, "ab"))
        wait_for(self._accepting, 15, f"mosquitto on port {self.port}")

    def _accepting(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"mosquitto exited ({self.process.returncode}): {self.log.read_text()[-2000:]}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=15)

    def restart(self) -> None:
        self.stop()
        self.start()


class Publisher:
    """QoS 1 publisher on a persistent session; counts what it sent and what the broker acknowledged (PUBACK).
    paho keeps an unacknowledged message and sends it again after a reconnect."""

    def __init__(self, port: int, client_id: str = "citytwin-test-publisher"):
        self.sent = 0
        self.acknowledged = 0
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                                  protocol=mqtt.MQTTv311)
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=1)
        self.client.on_publish = self._on_publish
        self.client.connect_async("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        wait_for(self.client.is_connected, 15, "the publisher's connection")

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self._lock:
            self.acknowledged += 1

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        self.client.publish(topic, payload, qos=qos)
        self.sent += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class IngestProcess:
    """``python -m layers.ingest`` as a child process, its output in a log file."""

    def __init__(self, broker_url: str, database_url: str, log: Path, *extra: str):
        self.args = [sys.executable, "-m", "layers.ingest", "--broker", broker_url, "--database-url", database_url,
                     *extra]
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.args, cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                                        stderr=open(self.log, "ab"))

    def wait_connected(self, count: int = 1, timeout: float = 30) -> None:
        wait_for(lambda: self.output().count("connected to") >= count or self._died(), timeout,
                 "the ingest to connect")
        assert self.process.poll() is None, self.output()[-3000:]

    def _died(self) -> bool:
        return self.process.poll() is not None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
