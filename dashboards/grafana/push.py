"""Upload the built dashboards to a live Grafana (grafana-client, the maintained grafana-api fork).

Provisioning from files is the normal path; this is for a Grafana that is not
provisioned by us (a shared instance, a quick look). Dashboards go to one folder
(uid ``bankguard``) and overwrite what is there, so a push is idempotent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaUnauthorizedError

from bankguard.errors import BankguardError

from .build import JSON_DIR

FOLDER_UID = "bankguard"
FOLDER_TITLE = "bankguard"
TIMEOUT_S = 10.0


class DashboardPushError(BankguardError):
    """Grafana could not be reached or refused the upload; the message is one line."""


def _api(url: str, token: str) -> GrafanaApi:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DashboardPushError(f"invalid Grafana URL {url!r}: expected http(s)://host[:port][/path]")
    # grafana-client appends "api" to the path as is: a sub-path needs its trailing slash.
    if parts.path and not parts.path.endswith("/"):
        url = parts._replace(path=parts.path + "/").geturl()
    return GrafanaApi.from_url(url, credential=token, timeout=TIMEOUT_S)


def _load(json_dir: Path) -> list[dict[str, Any]]:
    paths = sorted(Path(json_dir).glob("*.json"))
    if not paths:
        raise DashboardPushError(f"no dashboard JSON in {json_dir} (run 'bankguard dashboards build' first)")
    boards = []
    for path in paths:
        try:
            boards.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise DashboardPushError(f"cannot read dashboard {path}: {exc}") from None
    return boards


def _ensure_folder(api: GrafanaApi) -> str:
    """The uid of the "bankguard" folder, created when missing (matched by uid or title)."""
    for folder in api.folder.get_all_folders():
        if folder.get("uid") == FOLDER_UID or folder.get("title") == FOLDER_TITLE:
            return str(folder["uid"])
    return str(api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)["uid"])


def push_all(url: str, token: str, json_dir: Path = JSON_DIR) -> list[str]:
    """Upload every ``*.json`` in ``json_dir`` into the bankguard folder; returns the uids pushed.

    Raises :class:`DashboardPushError` with a one-line reason on any failure.
    """
    boards = _load(json_dir)
    api = _api(url, token)
    where, step = f"Grafana at {url}", "the folder"
    try:
        folder_uid = _ensure_folder(api)
        for board in boards:
            step = f"dashboard {board.get('uid')}"
            api.dashboard.update_dashboard({
                "dashboard": {**board, "id": None},
                "folderUid": folder_uid,
                "overwrite": True,
                "message": "bankguard dashboards push",
            })
    except GrafanaUnauthorizedError:
        raise DashboardPushError(f"{where} rejected the token (401 Unauthorized)") from None
    except GrafanaClientError as exc:
        raise DashboardPushError(f"{where} refused {step}: {_one_line(exc.message)}") from None
    except GrafanaException as exc:
        raise DashboardPushError(f"{where} failed on {step}: {_one_line(exc.message)}") from None
    except OSError as exc:  # connection refused, DNS, TLS: niquests errors are OSErrors
        raise DashboardPushError(f"cannot reach {where}: {_root_cause(exc)}") from None
    return [str(board["uid"]) for board in boards]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _root_cause(exc: BaseException) -> str:
    """The operating-system reason ("Connection refused") buried in niquests/urllib3 wrappers."""
    stack, seen, deepest = [exc], set(), exc
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        deepest = current
        nested = (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args)
        stack.extend(item for item in nested if isinstance(item, BaseException))
    # urllib3 prefixes messages with the connection object's repr: "<...HTTPConnection ...>: ".
    return _one_line(re.sub(r"^<[^>]*>:\s*", "", str(deepest)))
