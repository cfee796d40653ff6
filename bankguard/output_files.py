"""Output files that are whole or absent: checked before work starts, written beside the
target under a temporary name and renamed over it only once complete.

A parent directory is never created implicitly (a typo in ``--out`` must not leave a new
directory tree behind), and a failed or interrupted run leaves no partial file.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bankguard.errors import BankguardError


def check_output_file(path: Path, what: str = "output") -> Path:
    """Refuse, in one line, a target that could not be written: a missing or read-only
    parent directory, or a directory in the target's place."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise BankguardError(f"cannot write {what} {path}: directory {parent} does not exist")
    if path.is_dir():
        raise BankguardError(f"cannot write {what} {path}: it is a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BankguardError(f"cannot write {what} {path}: directory {parent} is not writable")
    return path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _discard(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class PendingFile:
    """A temporary file beside ``target`` that becomes ``target`` on :meth:`commit`.

    Never committed (an exception, an exit), it is removed when the object is collected or
    the interpreter exits, so no half-written file is left under either name."""

    def __init__(self, target: Path) -> None:
        check_output_file(target)
        self.target = target
        try:
            handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent or ".")
        except OSError as exc:
            raise BankguardError(f"cannot write {target}: {exc.strerror}") from None
        os.close(handle)
        os.chmod(name, 0o666 & ~_umask())  # as an ordinary new file, not mkstemp's 0600
        self.path = Path(name)
        self._cleanup = weakref.finalize(self, _discard, name)

    def commit(self) -> Path:
        """Rename the finished file over the target (atomic on one file system)."""
        try:
            os.replace(self.path, self.target)
        except OSError as exc:
            self.discard()
            raise BankguardError(f"cannot write {self.target}: {exc.strerror}") from None
        self._cleanup.detach()
        return self.target

    def discard(self) -> None:
        self._cleanup()


@contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """A path to write to; it replaces ``target`` only if the block completes."""
    pending = PendingFile(target)
    try:
        yield pending.path
    except BaseException:
        pending.discard()
        raise
    pending.commit()


def write_text_atomic(target: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` whole, or not at all."""
    with atomic_output(target) as path:
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise BankguardError(f"cannot write {target}: {exc.strerror}") from None
    return target
