"""The deployment's CA and server certificate."""

from __future__ import annotations

import datetime
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.errors import ProvisionError
from gateway.provision import pki

NOW = datetime.datetime(2030, 6, 1, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def ca() -> pki.KeyPair:
    return pki.make_ca(NOW)


def test_ca_is_a_ca_for_ten_years(ca: pki.KeyPair) -> None:
    cert = x509.load_pem_x509_certificate(ca.cert_pem)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_after_utc - NOW >= datetime.timedelta(days=3650)
    assert cert.not_valid_before_utc < NOW
    pki.check_key_pair(ca, "the CA")


def test_server_cert_is_signed_by_the_ca_for_its_hosts(ca: pki.KeyPair) -> None:
    hosts = pki.server_hosts(("broker.example", "10.0.0.5"))
    server = pki.issue_server_cert(ca, hosts, NOW)
    cert = x509.load_pem_x509_certificate(server.cert_pem)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    cert.verify_directly_issued_by(ca_cert)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert set(pki.cert_hosts(server.cert_pem)) == {
        "localhost",
        "127.0.0.1",
        "::1",
        "broker.example",
        "10.0.0.5",
    }
    validity = cert.not_valid_after_utc - NOW
    assert datetime.timedelta(days=700) < validity < datetime.timedelta(days=800)
    pki.check_key_pair(server, "the server")


def test_a_key_that_is_not_the_certificates_is_refused(ca: pki.KeyPair) -> None:
    other = pki.make_ca(NOW)
    with pytest.raises(ProvisionError, match="does not belong"):
        pki.check_key_pair(pki.KeyPair(ca.cert_pem, other.key_pem), "the CA")


def test_server_hosts_start_local_and_keep_order_once_each() -> None:
    assert pki.server_hosts(("b.example", "localhost", "a.example")) == (
        "localhost",
        "127.0.0.1",
        "::1",
        "b.example",
        "a.example",
    )


@pytest.mark.parametrize("host", ["broker.example", "BROKER.example", "10.1.2.3", "fe80::1"])
def test_check_host_accepts_names_and_addresses(host: str) -> None:
    assert pki.check_host(host)


@pytest.mark.parametrize("host", ["", "bad host", "-x.example", "a..b", "x" * 64 + ".example"])
def test_check_host_names_a_bad_host(host: str) -> None:
    with pytest.raises(ProvisionError, match=re.escape(f"bad host {host!r}")):
        pki.check_host(host)
