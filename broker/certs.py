"""A private CA with server and client certificates for the broker's TLS listener."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker.config import TlsFiles
from core.protocol import topics

# Leaf certificates: the longest validity clients such as Apple's accept for TLS servers.
DEFAULT_DAYS = 825
CA_DAYS = 3650  # the CA outlives several leaf renewals, so devices rarely need a new trust anchor
# Clock skew between the machine that issues and the devices that verify.
BACKDATE = dt.timedelta(minutes=5)
_RESERVED_NAMES = {"ca", "server"}  # client files must not overwrite the CA's or server's


@dataclass(frozen=True)
class CertificatePaths:
    """Where ``make_certificates`` wrote each file."""

    directory: Path
    clients: tuple[str, ...] = ()

    @property
    def ca_cert(self) -> Path:
        """The CA certificate: the trust anchor clients verify the broker with."""
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        """The CA's private key: keep it offline once the certificates are issued."""
        return self.directory / "ca.key"

    @property
    def server_cert(self) -> Path:
        """The broker's certificate."""
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        """The broker's private key."""
        return self.directory / "server.key"

    def client_cert(self, name: str) -> Path:
        """A client's certificate."""
        return self.directory / f"{name}.crt"

    def client_key(self, name: str) -> Path:
        """A client's private key."""
        return self.directory / f"{name}.key"

    def server_tls(self) -> TlsFiles:
        """The files a Mosquitto TLS listener needs."""
        return TlsFiles(self.ca_cert, self.server_cert, self.server_key)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Created 0600, never briefly world-readable; fchmod covers a file that existed already.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(pem)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PrecisionPulse"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(hosts: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, days: int
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
    )


def _leaf(
    common_name: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    usage: x509.ObjectIdentifier,
    days: int,
    hosts: Iterable[str] = (),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(_name(common_name), ca_cert.subject, key, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    hosts = list(hosts)
    if hosts:
        builder = builder.add_extension(_san(hosts), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _make_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("PrecisionPulse broker CA")
    cert = (
        _builder(name, name, key, CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_certificates(
    directory: Path,
    *,
    server_hosts: Iterable[str] = ("localhost", "127.0.0.1"),
    clients: Iterable[str] = (),
    days: int = DEFAULT_DAYS,
    force: bool = False,
) -> CertificatePaths:
    """Issue a new CA, a server certificate for ``server_hosts`` and one per client name."""
    hosts, names = list(server_hosts), tuple(clients)
    if not hosts:
        msg = "the server certificate needs at least one host name or IP address"
        raise ValueError(msg)
    for name in names:
        if not topics.is_device_id(name) or name in _RESERVED_NAMES:
            msg = f"bad client certificate name {name!r}: use a device id, not 'ca' or 'server'"
            raise ValueError(msg)
    if days < 1:
        msg = f"certificates must be valid for at least a day: {days}"
        raise ValueError(msg)
    paths = CertificatePaths(directory, names)
    existing = [path for path in (paths.ca_cert, paths.ca_key) if path.exists()]
    if existing and not force:
        # A new CA would silently invalidate the trust anchor every device holds.
        msg = f"a CA exists already at {existing[0]}; pass force=True (--force) to replace it"
        raise FileExistsError(msg)
    directory.mkdir(parents=True, exist_ok=True)

    ca = _make_ca()
    _write_key(paths.ca_key, ca[1])
    _write_cert(paths.ca_cert, ca[0])
    cert, key = _leaf(hosts[0], ca, ExtendedKeyUsageOID.SERVER_AUTH, days, hosts)
    _write_key(paths.server_key, key)
    _write_cert(paths.server_cert, cert)
    for name in names:
        cert, key = _leaf(name, ca, ExtendedKeyUsageOID.CLIENT_AUTH, days)
        _write_key(paths.client_key(name), key)
        _write_cert(paths.client_cert(name), cert)
    return paths
