"""Schema tests for mtls-auth and its consumer credentials."""

import pytest
import triogate
from mtls_auth_support import PLUGINS, config
from triogate.testing import plugin_config
from triogate_mtls_auth import MtlsAuthPlugin


def test_defaults() -> None:
    c = plugin_config(MtlsAuthPlugin, {})
    assert (c.subject_header, c.fingerprint_header, c.pem_header) == (
        "x-client-cert-subject", "x-client-cert-fingerprint", "")
    assert (c.anonymous, c.consumer_headers) == (None, True)


@pytest.mark.parametrize("raw, message", [
    ({"subject_header": "bad name"}, "subject_header"),
    ({"pem_header": "X-Client-Cert-Subject"}, "each needs its own header name"),
    ({"realm": 'a"b'}, "realm"),
    ({"verify": True}, "verify: unknown key"),
])
def test_rejected(raw, message) -> None:
    with pytest.raises(triogate.ConfigError) as err:
        plugin_config(MtlsAuthPlugin, raw, path="plugins.mtls-auth")
    assert message in str(err.value), err.value.errors


@pytest.mark.parametrize("credential, message", [
    ({"fingerprints": ["abc"]}, "consumers.x.credentials.mtls-auth.fingerprints[0]: expected a SHA-256 fingerprint"),
    ({"subjects": ["alice"]}, "consumers.x.credentials.mtls-auth.subjects[0]: expected an RFC 4514 distinguished name"),
    ({"subjects": "CN=x"}, "consumers.x.credentials.mtls-auth.subjects: expected a list of strings"),
    ({"dns_names": [""]}, "dns_names[0]: expected a non-empty string"),
    ({"serials": ["1"]}, "expected a table with one or more of fingerprints, subjects"),
    ({}, "expected a table with one or more of"),
    ({"uris": ["spiffe://example.org/orders"]}, "already belongs to consumer 'orders'"),
])
async def test_bad_credentials_are_config_errors(gateway_factory, upstream, certs, credential, message) -> None:
    cfg = config(certs, upstream)
    cfg["consumers"]["x"] = {"credentials": {"mtls-auth": credential}}
    with pytest.raises(triogate.ConfigError) as err:
        await gateway_factory(cfg, plugins=PLUGINS)
    assert message in str(err.value), err.value.errors


async def test_unknown_anonymous_consumer_is_a_config_error(gateway_factory, upstream, certs) -> None:
    cfg = config(certs, upstream, plugins={"mtls-auth": {"anonymous": "nobody"}})
    with pytest.raises(triogate.ConfigError) as err:
        await gateway_factory(cfg, plugins=PLUGINS)
    assert "routes.api.plugins.mtls-auth: anonymous: no consumer named 'nobody'" in str(err.value)


def test_fingerprints_and_subjects_are_normalized(certs) -> None:
    from triogate import ClientCert
    from triogate_mtls_auth import IdentityTable

    fp = ":".join(certs.bob.fingerprint[i:i + 2].upper() for i in range(0, 64, 2))
    table = IdentityTable({"bob": {"fingerprints": [fp]}, "alice": {"subjects": [" cn = alice , o = Example "]}})
    assert table.find(ClientCert.from_der(certs.bob.der)) == ("bob", "fingerprints")
    assert table.find(ClientCert.from_der(certs.alice.der)) == ("alice", "subjects")
    assert table.find(ClientCert.from_der(certs.stranger.der)) is None


@pytest.mark.parametrize("form", ["sha256:{colons}", "SHA256:{hex}", "sha256 Fingerprint={colons}",
                                  "SHA256 Fingerprint={colons}", "{hex}"])
def test_fingerprint_prefixes(certs, form: str) -> None:
    """What openssl prints (``sha256 Fingerprint=AB:..``, ``SHA256 Fingerprint=`` before 3.0) is pasted as is."""
    from triogate import ClientCert
    from triogate_mtls_auth import IdentityTable

    hexfp = certs.bob.fingerprint
    colons = ":".join(hexfp[i:i + 2].upper() for i in range(0, 64, 2))
    table = IdentityTable({"bob": {"fingerprints": [form.format(hex=hexfp.upper(), colons=colons)]}})
    assert table.find(ClientCert.from_der(certs.bob.der)) == ("bob", "fingerprints")
