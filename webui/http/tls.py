"""HTTPS: the certificate and key uvicorn serves, checked before the server starts."""

from __future__ import annotations

import ssl
from pathlib import Path


class TlsFilesError(ValueError):
    """The certificate or key cannot be served: missing, unreadable, mismatched, encrypted."""


def _no_passphrase() -> str:
    # Called by OpenSSL only for an encrypted key; uvicorn would otherwise prompt on a tty
    # that a service does not have.
    msg = "the key file is encrypted: give the server an unencrypted key (mode 0600)"
    raise TlsFilesError(msg)


def uvicorn_options(certfile: Path | None, keyfile: Path | None) -> dict[str, str]:
    """uvicorn's TLS arguments for the pair, none for neither; TlsFilesError says what is wrong."""
    if certfile is None and keyfile is None:
        return {}
    if certfile is None or keyfile is None:
        msg = "--ssl-certfile and --ssl-keyfile (PP_SSL_CERTFILE, PP_SSL_KEYFILE) go together"
        raise TlsFilesError(msg)
    for path in (certfile, keyfile):
        try:
            path.read_bytes()
        except OSError as error:
            msg = f"cannot read {path}: {error.strerror}"
            raise TlsFilesError(msg) from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile, keyfile, password=_no_passphrase)
    except ssl.SSLError as error:
        msg = f"{certfile} and {keyfile} are not a PEM certificate and its key: {error}"
        raise TlsFilesError(msg) from None
    return {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}
