"""Supervision of the stack's children: the first one to die stops the stack, said in one line.

``bankguard up`` checks its children every half second. A dead broker or worker is fatal at
once (the embedded broker keeps topics in memory, so a restarted one would serve topics with
the wrong partitions or none: the stack stops rather than run on a broker that lost its data);
the producer may end on its own with code 0 when its run is over.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bankguard.errors import BankguardError
from bankguard.processes import ManagedProcess

LAST_LINE_BYTES = 4096  # how much of a log's end is read for its last line


class ChildDied(BankguardError):
    """A child of the stack ended when it should not have; the message is the one line to show."""


def last_line(path: Path | None) -> str | None:
    """The last non-empty line of a log (a CLI child's one-line error), or None."""
    if path is None or not path.exists():
        return None
    with path.open("rb") as log:
        log.seek(max(0, log.seek(0, 2) - LAST_LINE_BYTES))
        lines = [line.strip() for line in log.read().decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else None


def death_notice(child: ManagedProcess) -> str:
    """``worker-0 was killed by SIGKILL; see …/worker-0.log``, with a CLI child's own error line."""
    notice = f"{child.name} {child.exit_description()}"
    line = last_line(child.log_path)
    if line is not None and line.startswith("bankguard: "):
        notice += f" ({line.removeprefix('bankguard: ')})"
    return notice + (f"; see {child.log_path}" if child.log_path else "")


def check_alive(children: Iterable[ManagedProcess], *, may_finish: frozenset[str] = frozenset()) -> None:
    """Raise :class:`ChildDied` for the first dead child, unless it is one that ``may_finish``
    and ended with code 0."""
    for child in children:
        if child.process is None or child.alive():
            continue
        if child.name in may_finish and child.returncode == 0:
            continue
        raise ChildDied(death_notice(child))
