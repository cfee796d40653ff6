"""TLS material for docker-compose.yml's Kafka: a private CA, and the broker's key and
certificate (for the names ``kafka`` and ``localhost``) in a password-protected PKCS#12
keystore.

Run once by the one-shot ``tls-init`` service; files that exist are kept, so restarts
never rotate certificates under running clients. Clients trust ``ca.crt`` only.

    KAFKA_TLS_PASSWORD=... python make_tls.py OUT_DIR [--owner UID]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

BROKER_NAMES = ("kafka", "localhost")
VALID_DAYS = 825


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(now: datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("bankguard compose CA")
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_broker(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate,
                now: datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The broker's certificate: server for clients, client for its own controller listener
    (mutual TLS there; the broker's principal is ``User:CN=kafka``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(name) for name in BROKER_NAMES] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder().subject_name(_name("kafka")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def write(path: Path, data: bytes, mode: int, owner: int | None) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.chmod(temporary, mode)
    if owner is not None:
        os.chown(temporary, owner, owner)
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--owner", type=int, help="uid (and gid) to own the keystore: the broker's user")
    args = parser.parse_args(argv)
    password = os.environ.get("KAFKA_TLS_PASSWORD", "")
    if len(password) < 12:
        print("make_tls: set KAFKA_TLS_PASSWORD (12 characters or more)", file=sys.stderr)
        return 2
    ca_path, keystore_path = args.out / "ca.crt", args.out / "kafka.p12"
    if ca_path.exists() and keystore_path.exists():
        print(f"make_tls: {args.out} already holds the CA and keystore; kept")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key, ca = make_ca(now)
    key, cert = make_broker(ca_key, ca, now)
    # PBES2 (PBKDF2-SHA256, AES-256-CBC) with a SHA-256 MAC: what current JDKs read.
    encryption = (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(100_000)
                  .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA256())
                  .build(password.encode()))
    keystore = pkcs12.serialize_key_and_certificates(b"kafka", key, cert, [ca], encryption)
    # The CA's key is not kept: nothing else is ever signed with it.
    write(keystore_path, keystore, 0o600, args.owner)
    write(ca_path, ca.public_bytes(serialization.Encoding.PEM), 0o644, None)
    print(f"make_tls: wrote {ca_path} and {keystore_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
