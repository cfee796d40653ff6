"""Who may change the rules: Ed25519 signatures over published rules configurations.

``bankguard rules publish`` signs the configuration's bytes with a private key its
publisher holds; workers accept a record from the control topic only when a key they
trust verifies it. The signature travels in Kafka headers, so the record's value stays
the reviewed YAML, byte for byte:

- ``bankguard.rules.key_id``: the signing key's id (16 hex digits of the SHA-256 of its
  raw public key),
- ``bankguard.rules.signed_at``: when it was signed (UTC, ISO 8601, milliseconds),
- ``bankguard.rules.signature``: base64 Ed25519 signature over :func:`signed_message`
  (a fixed prefix, the key id, the signing time, the control topic and the value), so a
  signature cannot be moved to other bytes, another time or another topic (a candidate
  signed for the shadow topic is refused on production's).

Keys: ``rules.signing_key`` (the publisher's private key, PEM) and ``rules.trusted_keys``
(a public key file, or a directory of ``*.pub`` files, one key each, named after their
holder). With neither set, the stack uses a local key pair in ``<run_dir>/keys``, made on
first use, so ``bankguard up`` followed by ``bankguard rules publish`` works at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bankguard.errors import BankguardError
from bankguard.settings import Settings

HEADER_PREFIX = "bankguard.rules."
KEY_ID, SIGNED_AT, SIGNATURE = (HEADER_PREFIX + name for name in ("key_id", "signed_at", "signature"))
LOCAL_KEY_NAME = "rules-signing"
LOCAL_SIGNER = "local"


class SignatureRefused(BankguardError):
    """A control record whose signature is missing or does not verify; ``reason`` is the DLQ label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Signed:
    """What a verified record says about its origin."""

    key_id: str
    signer: str
    signed_at: datetime


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signed_message(key: str, signed_at: str, topic: str, value: bytes) -> bytes:
    return b"\0".join([b"bankguard.rules.v1", key.encode(), signed_at.encode(), topic.encode(), value])


def sign(private_key: Ed25519PrivateKey, topic: str, value: bytes, *,
         now: datetime | None = None) -> dict[str, bytes]:
    """The headers that carry a signature of ``value`` for ``topic``."""
    kid = key_id(private_key.public_key())
    signed_at = (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    signature = private_key.sign(signed_message(kid, signed_at, topic, value))
    return {KEY_ID: kid.encode(), SIGNED_AT: signed_at.encode(), SIGNATURE: base64.b64encode(signature)}


class TrustedKeys:
    """The public keys whose signatures a worker accepts, by key id, with their holders' names."""

    def __init__(self, keys: dict[str, tuple[str, Ed25519PublicKey]]) -> None:
        self.keys = keys

    def verify(self, topic: str, value: bytes, headers: dict[str, bytes]) -> Signed:
        """Check a record's signature; :class:`SignatureRefused` says why it is not acceptable."""
        if not any(name in headers for name in (KEY_ID, SIGNED_AT, SIGNATURE)):
            raise SignatureRefused("rules_config_unsigned", "the record carries no signature "
                                   "(publish it with `bankguard rules publish`)")
        try:
            kid, signed_at = headers[KEY_ID].decode(), headers[SIGNED_AT].decode()
            signature = base64.b64decode(headers[SIGNATURE], validate=True)
            when = datetime.fromisoformat(signed_at)
        except (KeyError, UnicodeDecodeError, ValueError, binascii.Error) as exc:
            raise SignatureRefused("rules_signature_invalid", f"malformed signature headers ({exc})") from None
        if when.tzinfo is None:
            raise SignatureRefused("rules_signature_invalid", f"signing time {signed_at} has no time zone")
        trusted = self.keys.get(kid)
        if trusted is None:
            raise SignatureRefused("rules_signature_invalid", f"key {kid} is not trusted")
        name, public_key = trusted
        try:
            public_key.verify(signature, signed_message(kid, signed_at, topic, value))
        except InvalidSignature:
            raise SignatureRefused("rules_signature_invalid",
                                   f"signature by key {kid} ({name}) does not match the record") from None
        return Signed(kid, name, when.astimezone(UTC))


# --- key files ------------------------------------------------------------------------------


def generate_key_pair(directory: Path, name: str = LOCAL_KEY_NAME) -> tuple[Path, Path]:
    """Write ``name.pem`` (private, mode 0600) and ``name.pub``; refuse to overwrite either."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise BankguardError(f"key name {name!r}: use letters, digits, '.', '_' and '-'")
    private_path, public_path = directory / f"{name}.pem", directory / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise BankguardError(f"{path} exists; not overwriting a key")
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise BankguardError(f"cannot create {directory}: {exc.strerror}") from None
    key = Ed25519PrivateKey.generate()
    _write_new(private_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()), 0o600)
    _write_new(public_path, public_pem(key.public_key()), 0o644)
    return private_path, public_path


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with its whole content at once, or fail if it exists (no half-written key,
    and two processes making the local pair at the same time agree on one)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(handle, mode)
        os.write(handle, data)
        os.fsync(handle)
        os.close(handle)
        os.link(temporary, path)
    except FileExistsError:
        raise BankguardError(f"{path} exists; not overwriting a key") from None
    except OSError as exc:
        raise BankguardError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        Path(temporary).unlink(missing_ok=True)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise BankguardError(f"rules signing key not found: {path} (create one with `bankguard rules keygen`)") \
            from None
    except OSError as exc:
        raise BankguardError(f"cannot read rules signing key {path}: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise BankguardError(f"rules signing key {path}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BankguardError(f"rules signing key {path}: not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise BankguardError(f"cannot read trusted rules key {path}: {exc.strerror}") from None
    except ValueError:
        raise BankguardError(f"trusted rules key {path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BankguardError(f"trusted rules key {path}: not an Ed25519 key")
    return key


def _local_private_key(settings: Settings) -> Ed25519PrivateKey:
    """The run dir's key pair, made on first use by whichever process needs it first."""
    directory = settings.run_dir / "keys"
    path = directory / f"{LOCAL_KEY_NAME}.pem"
    if not path.exists():
        try:
            generate_key_pair(directory)
        except BankguardError:
            if not path.exists():  # not a lost race with another process: a real failure
                raise
    return load_private_key(path)


def _explicit(settings: Settings) -> bool:
    return settings.rules.signing_key is not None or settings.rules.trusted_keys is not None


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The key ``rules publish`` signs with."""
    if settings.rules.signing_key is not None:
        return load_private_key(settings.rules.signing_key)
    if _explicit(settings):
        raise BankguardError("no rules signing key configured: set BANKGUARD_RULES__SIGNING_KEY "
                             "(create one with `bankguard rules keygen`)")
    return _local_private_key(settings)


def trusted_keys(settings: Settings) -> TrustedKeys:
    """The keys a worker accepts; an explicit setting that names no key is an error, not 'trust none'."""
    path = settings.rules.trusted_keys
    if path is None:
        if _explicit(settings):
            raise BankguardError("no trusted rules keys configured: set BANKGUARD_RULES__TRUSTED_KEYS")
        public = _local_private_key(settings).public_key()
        return TrustedKeys({key_id(public): (LOCAL_SIGNER, public)})
    if path.is_dir():
        files = sorted(path.glob("*.pub"))
    elif path.is_file():
        files = [path]
    else:
        raise BankguardError(f"trusted rules keys not found: {path}")
    if not files:
        raise BankguardError(f"no *.pub key in {path}")
    keys: dict[str, tuple[str, Ed25519PublicKey]] = {}
    for file in files:
        public = load_public_key(file)
        keys[key_id(public)] = (file.stem, public)
    return TrustedKeys(keys)
