"""Certificates from make_certificates, and Mosquitto serving TLS with them."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import os
import pwd
import socket
import ssl
from pathlib import Path

import aiomqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from broker import config
from broker.certs import CertificatePaths, make_certificates
from broker.credentials import PasswordFile
from broker.mosquitto_process import MosquittoProcess, free_port
from core.passwords import mosquitto_hash
from tests.broker.conftest import PASSWORD, TIMEOUT, client, needs_mosquitto, received


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertificatePaths:
    """One set of certificates for the module (EC keys are quick, but not free)."""
    return make_certificates(tmp_path_factory.mktemp("certs"), clients=["press-07"])


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_the_server_certificate_names_its_hosts(certs: CertificatePaths) -> None:
    san = _load(certs.server_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]


def test_every_certificate_is_signed_by_the_ca(certs: CertificatePaths) -> None:
    ca = _load(certs.ca_cert)
    for path in (certs.server_cert, certs.client_cert("press-07")):
        _load(path).verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_private_keys_are_p256_and_private(certs: CertificatePaths) -> None:
    for path in (certs.ca_key, certs.server_key, certs.client_key("press-07")):
        assert path.stat().st_mode & 0o777 == 0o600
    public_key = _load(certs.server_cert).public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"


def test_an_existing_ca_is_kept_unless_forced(tmp_path: Path) -> None:
    first = make_certificates(tmp_path)
    ca = first.ca_cert.read_bytes()
    with pytest.raises(FileExistsError, match="a CA exists already"):
        make_certificates(tmp_path)
    assert first.ca_cert.read_bytes() == ca
    make_certificates(tmp_path, force=True)
    assert first.ca_cert.read_bytes() != ca


@pytest.mark.parametrize("name", ["ca", "server", "../evil", ""])
def test_client_names_cannot_clash_or_escape(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="bad client certificate name"):
        make_certificates(tmp_path, clients=[name])
    assert not (tmp_path / "ca.key").exists()


@pytest.fixture
def tls_broker(tmp_path: Path, certs: CertificatePaths) -> MosquittoProcess:
    """Mosquitto configured by the production renderer, on loopback with test paths."""
    (tmp_path / "data").mkdir()
    (tmp_path / config.ACL_FILE_NAME).write_text(config.render_acl())
    for username in ("server", "dev-a"):
        PasswordFile(tmp_path / config.PASSWORD_FILE_NAME).set(username, mosquitto_hash(PASSWORD))
    port = free_port()
    conf = tmp_path / config.CONF_FILE_NAME
    conf.write_text(
        config.render_deployment_conf(
            config_dir=tmp_path,
            data_dir=tmp_path / "data",
            certs_dir=certs.directory,
            port=port,
            bind_address="127.0.0.1",
            run_as=pwd.getpwuid(os.geteuid()).pw_name,  # root would switch to 'mosquitto'
        )
    )
    return MosquittoProcess(conf, port=port, tls=True)


@needs_mosquitto
async def test_tls_round_trip_with_the_ca(
    tls_broker: MosquittoProcess, certs: CertificatePaths
) -> None:
    trust = ssl.create_default_context(cafile=certs.ca_cert)
    async with (
        tls_broker,
        client(tls_broker.port, "dev-a", tls_context=trust) as a,
        client(tls_broker.port, "server", tls_context=trust) as server,
    ):
        assert tls_broker.url == f"mqtts://127.0.0.1:{tls_broker.port}"
        await a.subscribe("pp/v1/dev/dev-a/cmd", qos=1)
        await server.publish("pp/v1/dev/dev-a/cmd", b"over tls", qos=1)
        assert await received(a, 1) == [("pp/v1/dev/dev-a/cmd", b"over tls")]


@needs_mosquitto
# paho leaves the socket of a failed TLS handshake for the garbage collector to close.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <ssl.SSLSocket:pytest.PytestUnraisableExceptionWarning"
)
async def test_tls_refuses_a_client_that_does_not_trust_the_ca(
    tls_broker: MosquittoProcess,
) -> None:
    async with tls_broker:
        with pytest.raises(aiomqtt.MqttError, match="CERTIFICATE_VERIFY_FAILED"):
            async with client(tls_broker.port, "dev-a", tls_context=ssl.create_default_context()):
                pass
        gc.collect()  # so the leaked socket is reported (and ignored) within this test


def _handshake(port: int, cafile: Path, ciphers: str | None = None) -> tuple[str, str]:
    """The suite and version a TLS 1.2 (or, without ``ciphers``, any) handshake agrees on."""
    context = ssl.create_default_context(cafile=cafile)
    if ciphers is not None:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(ciphers)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        agreed = tls.cipher()
        assert agreed is not None
        return agreed[0], agreed[1]


@needs_mosquitto
@pytest.mark.parametrize(
    "suite", ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256"]
)
async def test_tls_12_refuses_cbc_suites(
    tls_broker: MosquittoProcess, certs: CertificatePaths, suite: str
) -> None:
    async with tls_broker:
        with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"):
            await asyncio.to_thread(_handshake, tls_broker.port, certs.ca_cert, suite)


@needs_mosquitto
async def test_tls_12_takes_aead_suites_and_tls_13_its_defaults(
    tls_broker: MosquittoProcess, certs: CertificatePaths
) -> None:
    async with tls_broker:
        for suite in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"):
            agreed = await asyncio.to_thread(_handshake, tls_broker.port, certs.ca_cert, suite)
            assert agreed == (suite, "TLSv1.2")
        _, version = await asyncio.to_thread(_handshake, tls_broker.port, certs.ca_cert)
        assert version == "TLSv1.3"
