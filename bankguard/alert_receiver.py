"""The embedded stack's Alertmanager receiver: a local webhook that logs every notification.

Without it, the embedded Alertmanager routes a page to a receiver with no integration and
the page goes nowhere; with it, what Alertmanager delivers is visible, as it arrives (a log
line per alert) and afterwards (a JSON-lines file, and a summary of what fired). Production
points alertmanager.yml at real pager and ticket integrations instead.

The payload is Alertmanager's webhook format, version 4:
https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, UTC
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, TypedDict, cast
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

HOST: Final = "127.0.0.1"  # the embedded stack's Alertmanager runs on this machine
PATH: Final = "/alerts"


class AlertCount(TypedDict):
    """One kind of alert and how often Alertmanager delivered it."""

    alertname: str | None
    scenario: str | None
    severity: str | None
    status: str
    deliveries: int
    first_received_at: str
    last_received_at: str


class Summary(TypedDict):
    """What Alertmanager delivered, in a form a person or a test reads at a glance."""

    url: str | None
    log: str
    notifications: int
    alerts: list[AlertCount]
    critical_fired: bool


def _is_payload(document: object) -> bool:
    """What the summary relies on: an ``alerts`` list of objects, each with a status and string labels."""
    if not isinstance(document, dict) or not isinstance(document.get("alerts"), list):
        return False
    return all(isinstance(alert, dict) and isinstance(alert.get("status"), str)
               and isinstance(labels := alert.get("labels"), dict)
               and all(isinstance(value, str) for value in labels.values())
               for alert in document["alerts"])


def _is_critical_firing(alert: dict[str, Any]) -> bool:
    return bool(alert["status"] == "firing" and alert["labels"].get("severity") == "critical")


def _summarise(records: Iterable[dict[str, Any]], *, url: str | None, log_path: str) -> Summary:
    """The one summary of logged notifications, for the running receiver and for a file alike."""
    counts: dict[tuple[str | None, str | None, str | None, str], AlertCount] = {}
    notifications = 0
    critical_fired = False
    for record in records:
        notifications += 1
        received_at: str = record["received_at"]
        for alert in record["alerts"]:
            labels = alert["labels"]
            key = (labels.get("alertname"), labels.get("scenario"), labels.get("severity"), alert["status"])
            count = counts.setdefault(key, AlertCount(
                alertname=key[0], scenario=key[1], severity=key[2], status=key[3], deliveries=0,
                first_received_at=received_at, last_received_at=received_at))
            count["deliveries"] += 1
            at = datetime.fromisoformat(received_at)
            if at < datetime.fromisoformat(count["first_received_at"]):
                count["first_received_at"] = received_at
            if at > datetime.fromisoformat(count["last_received_at"]):
                count["last_received_at"] = received_at
            critical_fired = critical_fired or _is_critical_firing(alert)

    def order(key: tuple[str | None, ...]) -> tuple[tuple[bool, str], ...]:
        return tuple((part is None, part or "") for part in key)  # a missing label sorts last

    return Summary(url=url, log=log_path, notifications=notifications,
                   alerts=[counts[key] for key in sorted(counts, key=order)], critical_fired=critical_fired)


def _records(lines: Iterable[str], source: str) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as error:
            raise ValueError(f"{source}:{number}: not JSON: {error}") from None
        if not _is_payload(record) or not isinstance(record.get("received_at"), str):
            raise ValueError(f"{source}:{number}: not a received Alertmanager notification")
        records.append(record)
    return records


def summarise_log(path: str | os.PathLike[str]) -> Summary:
    """What fired, from a receiver's log file: the summary outlives the process that received it.

    A last line without its newline is one still being written, and is left out.
    """
    text = Path(path).read_text(encoding="utf-8")
    whole_lines = text.split("\n")[:-1]
    return _summarise(_records(whole_lines, str(path)), url=None, log_path=str(path))


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck delivery does not hold up the stack's shutdown
    request_queue_size = 128  # the default 5 resets connections when many groups are delivered at once

    def __init__(self, port: int, accept: Callable[[bytes, str], tuple[HTTPStatus, str]]) -> None:
        self.accept = accept  # body, client address -> the status and message to reply
        super().__init__((HOST, port), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A broken connection is the client's problem: one line, not a traceback on stderr."""
        log.warning("alert receiver: request from %s failed: %r", client_address, sys.exception())


class _Handler(BaseHTTPRequestHandler):
    timeout = 30  # seconds a client may take to send its request

    def do_POST(self) -> None:
        if urlsplit(self.path).path != PATH:
            self._reply(HTTPStatus.NOT_FOUND, f"notifications go to {PATH}")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            length = -1
        if length < 0:
            self._reply(HTTPStatus.LENGTH_REQUIRED, "a Content-Length is required")
            return
        status, message = cast(_Server, self.server).accept(self.rfile.read(length), self.client_address[0])
        self._reply(status, message)

    def _reply(self, status: HTTPStatus, message: str) -> None:
        body = (message + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the receiver logs each notification itself, not each HTTP request."""


class AlertReceiver:
    """Alertmanager's webhook target on 127.0.0.1: logs, keeps and summarises each notification.

    The log file is appended to, one JSON line per accepted notification (the payload and its
    ``received_at``), flushed at once; the query methods cover what this receiver accepted.
    """

    def __init__(self, log_path: str | os.PathLike[str], *, port: int = 0) -> None:
        self.log_path = Path(log_path)
        self.port = port  # 0: any free port, known once started
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._log: IO[bytes] | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The URL for Alertmanager's ``webhook_configs``."""
        if self._url is None:
            raise RuntimeError("the alert receiver has not been started")
        return self._url

    def start(self) -> AlertReceiver:
        if self._server is not None:
            raise RuntimeError("the alert receiver is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # closed by stop()
        try:
            self._server = _Server(self.port, self._accept)
        except OSError:
            self._log.close()
            self._log = None
            raise
        self.port = self._server.server_port
        self._url = f"http://{HOST}:{self.port}{PATH}"
        self._thread = threading.Thread(  # stop() waits up to one poll interval
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="alert-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the log; what was received stays queryable."""
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join()
        with self._lock:  # a delivery still in flight finds the log closed and is refused
            if self._log is not None:
                self._log.close()
                self._log = None

    def __enter__(self) -> AlertReceiver:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def notifications(self) -> list[dict[str, Any]]:
        """Each accepted notification as logged (the payload and its ``received_at``), as copies:
        a caller cannot change what the summary counts."""
        with self._lock:
            lines = list(self._lines)
        return [json.loads(line) for line in lines]

    def firing(self, alertname: str | None = None) -> list[dict[str, Any]]:
        """Firing alerts, once per notification that carried them (Alertmanager repeats a group's
        alerts in each of its notifications), optionally only those named ``alertname``."""
        return [alert for note in self.notifications() for alert in note["alerts"] if alert["status"] == "firing"
                and (alertname is None or alert["labels"].get("alertname") == alertname)]

    def summary(self) -> Summary:
        return _summarise(self.notifications(), url=self._url, log_path=str(self.log_path))

    def _accept(self, body: bytes, client: str) -> tuple[HTTPStatus, str]:
        """Log and keep one delivery; the status to reply, so Alertmanager retries what was not kept."""
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as error:  # not UTF-8, not JSON, or nested too deep
            log.warning("alert receiver: rejected a body from %s that is not JSON: %s", client, error)
            return HTTPStatus.BAD_REQUEST, "not JSON"
        if not _is_payload(payload):
            log.warning("alert receiver: rejected a body from %s that is not an Alertmanager notification", client)
            return HTTPStatus.BAD_REQUEST, "not an Alertmanager notification: no list of alerts with labels and status"
        with self._lock:  # one writer at a time: whole lines, in the order received_at says
            if self._log is None:
                return HTTPStatus.SERVICE_UNAVAILABLE, "the receiver is stopping"
            # ASCII escapes: any string JSON can carry (a lone surrogate too) makes a line that reads back
            line = json.dumps({**payload, "received_at": datetime.now(UTC).isoformat()})
            try:
                self._log.write((line + "\n").encode())
                self._log.flush()
            except OSError as error:
                log.warning("alert receiver: cannot write %s: %s", self.log_path, error)
                return HTTPStatus.INTERNAL_SERVER_ERROR, "cannot log the notification"
            self._lines.append(line)
        for alert in payload["alerts"]:
            labels = alert["labels"]
            level = logging.WARNING if _is_critical_firing(alert) else logging.INFO
            log.log(level, "alert %s: %s%s", alert["status"], labels.get("alertname"),
                    "".join(f" {name}={labels[name]}" for name in ("scenario", "severity") if name in labels))
        return HTTPStatus.OK, "ok"
