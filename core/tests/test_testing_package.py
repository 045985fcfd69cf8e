"""triogate.testing is a package whose optional parts fail only when used: without PyJWT and
cryptography the pytest plugin, the fixtures and every other helper work, and the identity
provider raises an ImportError naming the ``testing-idp`` extra."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import triogate.testing

# a directory that shadows PyJWT: ``import jwt`` fails as if it were not installed
NO_JWT = "raise ImportError(\"No module named 'jwt'\", name='jwt')\n"


def test_every_public_name_imports_from_the_package() -> None:
    for name in triogate.testing.__all__:
        assert getattr(triogate.testing, name) is not None, name
    from triogate.testing import IdentityProvider, IdPKey

    assert IdentityProvider.__module__ == IdPKey.__module__ == "triogate.testing.idp"


def test_the_identity_provider_names_its_extra_when_pyjwt_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jwt", None)  # what an uninstalled module looks like to import
    monkeypatch.delitem(sys.modules, "triogate.testing.idp")
    monkeypatch.delattr(triogate.testing, "idp")
    with pytest.raises(ImportError, match=r"IdentityProvider needs PyJWT and cryptography .*"
                                          r"pip install 'triogate\[testing-idp\]'"):
        from triogate.testing import IdentityProvider  # noqa: F401
    assert triogate.testing.load_gateway is not None  # the rest does not care


def test_fixtures_work_without_pyjwt_and_only_identity_provider_fails(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "jwt.py").write_text(NO_JWT)
    (tmp_path / "test_kit.py").write_text(textwrap.dedent('''
        from triogate.testing import load_gateway


        async def test_upstream_and_gateway(upstream, gateway_factory):
            gw = await gateway_factory({"upstreams": {"u": {"targets": [{"url": upstream.url}]}},
                                        "routes": {"r": {"paths": ["/"], "upstream": "u"}}})
            assert (await gw.client.get("/x")).status == 200
            assert load_gateway({"upstreams": {"u": {"targets": [{"url": upstream.url}]}},
                                 "routes": {"r": {"paths": ["/"], "upstream": "u"}}}).services.plugins == []


        async def test_identity_provider(identity_provider):
            pass
    '''))
    (tmp_path / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "TRIOGATE"))}
    env["PYTHONPATH"] = str(shadow)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                           "test_kit.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    out = proc.stdout + proc.stderr
    assert "1 failed, 1 passed" in out and "FAILED test_kit.py::test_identity_provider" in out, out[-4000:]
    assert "pip install 'triogate[testing-idp]'" in out, out[-4000:]
