"""The deployment's small PKI: a CA and the broker's server certificate, as PEM bytes.

Pure functions over `cryptography`; no file I/O. EC P-256 keys, SHA-256 signatures.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.errors import ProvisionError

CA_VALIDITY = datetime.timedelta(days=3652)  # 10 years
SERVER_VALIDITY = datetime.timedelta(days=730)  # 2 years
# Backdated so that a unit whose clock is a little behind still accepts a fresh certificate.
NOT_BEFORE_MARGIN = datetime.timedelta(hours=1)

# Always in the server certificate, so a broker and a gateway on one machine just work.
LOCAL_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")

_DNS_LABEL_RE = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes


def check_host(host: str) -> str:
    """Return `host` if it is an IP address or a DNS name, else raise ProvisionError naming it."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    labels = host.split(".")
    if len(host) > 253 or not all(_DNS_LABEL_RE.fullmatch(label) for label in labels):
        raise ProvisionError(f"bad host {host!r}: give a DNS name or an IP address")
    return host.lower()


def server_hosts(extra_hosts: tuple[str, ...]) -> tuple[str, ...]:
    """The names the server certificate covers: the local ones, then `extra_hosts`, once each."""
    return tuple(dict.fromkeys(LOCAL_HOSTS + extra_hosts))


def make_ca(now: datetime.datetime) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "balise"),
            x509.NameAttribute(NameOID.COMMON_NAME, "balise deployment CA"),
        ]
    )
    cert = (
        _builder(name, name, key.public_key(), now, CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(_cert_pem(cert), _key_pem(key))


def issue_server_cert(ca: KeyPair, hosts: tuple[str, ...], now: datetime.datetime) -> KeyPair:
    """A server certificate for `hosts` (the first is its common name), signed by `ca`."""
    ca_cert = load_cert(ca.cert_pem, "the CA certificate")
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ProvisionError("the CA key is not an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "balise"),
            x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
        ]
    )
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        _builder(subject, ca_cert.subject, key.public_key(), now, SERVER_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return KeyPair(_cert_pem(cert), _key_pem(key))


def load_cert(pem: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise ProvisionError(f"{what} is not a PEM certificate: {exc}") from exc


def check_key_pair(pair: KeyPair, what: str) -> None:
    """Raise ProvisionError unless `pair.key_pem` is the private key of `pair.cert_pem`."""
    cert = load_cert(pair.cert_pem, f"{what} certificate")
    try:
        key = serialization.load_pem_private_key(pair.key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ProvisionError(f"{what} key is not an unencrypted PEM private key") from exc
    if key.public_key() != cert.public_key():
        raise ProvisionError(f"{what} key does not belong to {what} certificate")


def cert_hosts(cert_pem: bytes) -> tuple[str, ...]:
    """The DNS names and IP addresses in a certificate's subjectAltName."""
    cert = load_cert(cert_pem, "the server certificate")
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    names = san.get_values_for_type(x509.DNSName)
    addresses = [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    return tuple(names + addresses)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime.datetime,
    validity: datetime.timedelta,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - NOT_BEFORE_MARGIN)
        .not_valid_after(now + validity)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
