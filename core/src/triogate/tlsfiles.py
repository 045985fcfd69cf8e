"""TLS to upstreams: the client ``ssl.SSLContext`` of an upstream's ``tls`` table.

The context is built when the config loads (``triogate check``, start, every reload), so a
missing, unreadable or garbled CA, certificate or key file is a config error naming its key,
never a failed handshake at request time; a reload builds it again and so re-reads the files.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

__all__ = ["TLSFileError", "client_context", "describe_ssl_error", "resolve_path", "server_context", "ssl_failure"]


class TLSFileError(ValueError):
    """A ``tls`` file cannot be used; ``field`` is its key in the table (``ca``, ``cert``, ``key``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def resolve_path(path: str, base: Path) -> Path:
    """A relative path is relative to the config file's directory (as ``gateway.hooks`` are), so the
    gateway finds its files whatever directory it was started from."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base / p).absolute()  # absolute: an error says where it looked


def _read(field: str, path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TLSFileError(field, f"no such file: {str(path)!r}") from None
    except IsADirectoryError:
        raise TLSFileError(field, f"{str(path)!r} is a directory, expected a PEM file") from None
    except OSError as exc:
        raise TLSFileError(field, f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    return data.decode("latin-1")


def _no_password() -> bytes:
    # load_cert_chain would otherwise prompt on the terminal for an encrypted key's passphrase
    raise TLSFileError("key", "the private key is encrypted; triogate needs an unencrypted PEM key "
                              "(openssl pkey -in key.pem -out plain.pem)")


def client_context(tls: Any, base: Path) -> ssl.SSLContext:
    """The context for one upstream's ``tls`` table (an ``UpstreamTLSConfig``); raises :class:`TLSFileError`.

    ``ca`` replaces the system trust store (a private CA should not also trust every public one);
    ``cert`` (with ``key``, or a ``cert`` file holding the key too) is presented for upstream mTLS.
    """
    if tls.verify:
        if tls.ca:
            path = resolve_path(tls.ca, base)
            text = _read("ca", path)
            try:  # given cadata, the default context trusts only it (no load_default_certs)
                ctx = ssl.create_default_context(cadata=text)
            except (ssl.SSLError, ValueError) as exc:
                raise TLSFileError("ca", f"{str(path)!r} holds no PEM certificate ({_reason(exc)})") from None
        else:
            ctx = ssl.create_default_context()
    else:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.cert:
        cert_path = resolve_path(tls.cert, base)
        cert_text = _read("cert", cert_path)
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=cert_text)
        except (ssl.SSLError, ValueError) as exc:
            raise TLSFileError("cert", f"{str(cert_path)!r} holds no PEM certificate ({_reason(exc)})") from None
        key_path = resolve_path(tls.key, base) if tls.key else None
        key_field = "key" if key_path is not None else "cert"
        key_text = _read("key", key_path) if key_path is not None else cert_text
        if "PRIVATE KEY-----" not in key_text:
            where = f"{str(key_path)!r}" if key_path is not None else f"{str(cert_path)!r} (and tls.key is unset)"
            raise TLSFileError(key_field, f"{where} holds no PEM private key")
        try:
            ctx.load_cert_chain(cert_path, key_path, password=_no_password)
        except TLSFileError:
            raise
        except ssl.SSLError as exc:
            if exc.reason == "KEY_VALUES_MISMATCH":
                raise TLSFileError(key_field, "the private key does not match the certificate in tls.cert") from None
            where = str(key_path) if key_path is not None else str(cert_path)
            raise TLSFileError(key_field, f"cannot load the private key from {where!r} ({_reason(exc)})") from None
        except OSError as exc:  # the file went away between the reads
            raise TLSFileError(key_field, f"cannot read: {exc.strerror or exc}") from None
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def server_context(cert: str, key: str | None, alpn: list[str], *, client_auth: str = "none",
                   client_ca: str | None = None, client_crl: str | None = None) -> ssl.SSLContext:
    """A listener's context; raises :class:`TLSFileError` naming the listener key of a bad file.

    With ``client_auth`` ``optional``/``required`` the handshake asks for a client certificate and
    the ssl module verifies it (chain to ``client_ca``, expiry, the clientAuth purpose, and with
    ``client_crl`` revocation of the leaf). ``optional`` accepts a handshake without a certificate
    but, as OpenSSL does with CERT_OPTIONAL, fails one whose certificate does not verify.
    """
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cert, key, password=_no_password)
    except TLSFileError as exc:
        raise TLSFileError("tls_key", str(exc)) from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TLSFileError("tls_key", "the private key does not match the certificate in tls_cert") from None
        files = f"{cert!r} and {key!r}" if key else repr(cert)
        raise TLSFileError("tls_cert", f"cannot load the certificate and key from {files} ({_reason(exc)})") from None
    except OSError as exc:
        raise TLSFileError("tls_cert", f"cannot read: {exc.strerror or exc}") from None
    if client_auth != "none":
        ctx.verify_mode = ssl.CERT_REQUIRED if client_auth == "required" else ssl.CERT_OPTIONAL
        if client_ca:
            path = Path(client_ca)
            text = _read("client_ca", path)
            try:
                ctx.load_verify_locations(cadata=text)
            except (ssl.SSLError, ValueError) as exc:
                raise TLSFileError("client_ca", f"{str(path)!r} holds no PEM certificate ({_reason(exc)})") from None
        if client_crl:
            path = Path(client_crl)
            text = _read("client_crl", path)
            if "-----BEGIN X509 CRL-----" not in text:
                raise TLSFileError("client_crl", f"{str(path)!r} holds no PEM CRL (-----BEGIN X509 CRL-----)")
            try:  # a CRL is loaded like a CA file; cadata takes certificates only
                ctx.load_verify_locations(cafile=str(path))
            except (ssl.SSLError, OSError) as exc:
                raise TLSFileError("client_crl", f"cannot load the CRL from {str(path)!r} ({_reason(exc)})") from None
            ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    ctx.set_alpn_protocols(alpn)
    return ctx


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return text.split(" (_ssl.c", 1)[0] or type(exc).__name__


def ssl_failure(exc: BaseException | None) -> ssl.SSLError | None:
    """The TLS protocol error behind ``exc`` (trio wraps it in BrokenResourceError), if any.

    An EOF without close_notify or a syscall error is not a TLS verdict (the upstream
    just closed or reset), so those are not returned.
    """
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, ssl.SSLError):
            if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)):
                return None
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def describe_ssl_error(exc: ssl.SSLError) -> str:
    """``certificate has expired``, ``Hostname mismatch, certificate is not valid for '127.0.0.1'.``,
    ``tlsv13 alert certificate required``: the verification message or the alert, no C source line."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return str(exc.verify_message)
    return _reason(exc).removeprefix(f"[{exc.library}: {exc.reason}] " if exc.library and exc.reason else "")
