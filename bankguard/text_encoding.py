"""Text files from banks in the encodings they come in: UTF-8 (with or without a byte-order
mark) or, from Chinese banks' exports, GBK/GB18030; everything is handed on as UTF-8."""

from __future__ import annotations

import codecs

from bankguard.errors import BankguardError

AUTO = "auto"
AUTO_ORDER = ("utf-8-sig", "gb18030")  # gb18030 is a superset of GBK and GB2312
DETECT_SAMPLE = 256 * 1024


def to_utf8(data: bytes, encoding: str = AUTO, *, name: str = "file") -> tuple[bytes, str]:
    """``data`` as UTF-8 without a BOM, and the encoding it was read as.

    ``auto`` tries UTF-8 (a BOM is dropped), then GB18030; strict decoding, so a file that is
    neither is refused in one line (with a guess of its encoding when one can be made)
    rather than read as garbage."""
    candidates = AUTO_ORDER if encoding.lower() == AUTO else (encoding,)
    for candidate in candidates:
        try:
            text = data.decode(candidate)
        except UnicodeDecodeError as exc:
            last = exc
            continue
        except LookupError:
            raise BankguardError(f"unknown encoding {candidate!r}") from None
        label = codecs.lookup(candidate).name
        if label == "utf-8-sig":
            return (data[3:] if data.startswith(codecs.BOM_UTF8) else data), "utf-8"
        return text.encode("utf-8"), label
    tried = " or ".join(codecs.lookup(c).name.replace("utf-8-sig", "UTF-8") for c in candidates)
    hint = _guess(data) if encoding.lower() == AUTO else None
    raise BankguardError(f"{name}: not {tried} text (byte {last.start}: {last.reason})"
                         + (f"; it looks like {hint}: pass --encoding {hint}" if hint else "; pass --encoding"))


def _guess(data: bytes) -> str | None:
    """charset-normalizer's best guess, only to suggest an ``--encoding``: never decoded on a guess."""
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - installed with the package
        return None
    best = from_bytes(data[:DETECT_SAMPLE]).best()
    return None if best is None else str(best.encoding)
