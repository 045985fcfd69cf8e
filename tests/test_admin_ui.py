"""The admin UI in a real headless browser: Debian's chromium driven by Playwright (no browser download).

The gateway and its upstreams run on a trio loop in a thread (:class:`LiveGateway`), so this plain
test can use Playwright's sync API. The page must load without console errors, show the routes,
upstreams and plugins the config says, show a target going down, and show traffic arriving.

``TRIOGATE_SCREENSHOT=<path>`` saves a screenshot of the page at the end (docs/img/make_screenshot.py).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import pytest
import tomli_w
import trio
import triogate
from triogate.testing import UpstreamServer, start_gateway

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TOKEN = "s3cret-admin-token-0123"
BROWSER_ARGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-dev-shm-usage"] + (["--no-sandbox"] if os.geteuid() == 0 else [])

# never skipped: make test installs playwright (requirements-dev.txt), .ci/run installs chromium
try:
    from playwright import sync_api
except ImportError:  # pragma: no cover
    pytest.fail("the admin UI test needs playwright: pip install -r requirements-dev.txt", pytrace=False)
if not os.path.exists(CHROMIUM):  # pragma: no cover
    pytest.fail(f"the admin UI test needs Debian's chromium at {CHROMIUM} (apt-get install chromium)",
                pytrace=False)


class LiveGateway:
    """Upstreams and a gateway (native and admin listeners) on a trio loop in a background thread."""

    def __init__(self, config: Callable[[list[UpstreamServer]], dict[str, Any]], upstreams: int = 3) -> None:
        self._config = config
        self.upstreams = [UpstreamServer(self._handler, name=f"u{i}") for i in range(upstreams)]
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._thread_main, name="live gateway", daemon=True)
        self.token: Any = None
        self.url = self.admin_url = ""
        self.gateway: Any = None

    @staticmethod
    async def _handler(request: triogate.Request) -> Any:
        if request.path.startswith("/api/orders/fail"):
            return triogate.Response.json({"error": "out of stock"}, status=503)
        return {"path": request.path}

    def _thread_main(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self._failure = exc
            self._ready.set()

    async def _main(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            for up in self.upstreams:
                await nursery.start(up.run)
            gw = await start_gateway(nursery, self._config(self.upstreams), autoload=True)
            self.gateway = gw.gateway
            self.url, self.admin_url = gw.url, gw.gateway.admin.url
            self._ready.set()
            await self._stop.wait()
            await gw.stop()
            nursery.cancel_scope.cancel()

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(20) or self._failure is not None:
            raise RuntimeError("the gateway did not start") from self._failure
        return self

    def __exit__(self, *exc: object) -> None:
        trio.from_thread.run_sync(self._stop.set, trio_token=self.token)
        self._thread.join(15)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` on the gateway's trio loop (e.g. stop an upstream)."""
        return trio.from_thread.run_sync(fn, *args, trio_token=self.token)

    def reload_file(self, path: Path) -> list[str]:
        """Reload the gateway from ``path`` as SIGHUP would; the errors, empty when applied."""
        self.gateway.config_path = path
        return trio.from_thread.run(self.gateway.reload, trio_token=self.token)


def config(ups: list[UpstreamServer]) -> dict[str, Any]:
    fast = {"path": "/health", "interval": 0.2, "timeout": 0.5, "healthy_threshold": 1, "unhealthy_threshold": 1}
    return {
        "gateway": {"access_log": "off"},
        "admin": {"listen": "127.0.0.1:0", "token": TOKEN},
        "upstreams": {
            "users": {"targets": [{"url": ups[0].url}, {"url": ups[1].url}], "health_check": fast},
            "orders": {"targets": [{"url": ups[2].url}], "health_check": fast},
        },
        "routes": {
            "users": {"paths": ["/api/users"], "methods": ["GET", "POST"], "upstream": "users",
                      "plugins": {"rate-limit": {"limits": ["1000/second"], "key": "ip"},
                                  "cors": {"origins": ["https://app.example"]}}},
            "orders": {"paths": ["/api/orders"], "upstream": "orders"},
        },
        "plugins": {"request-size-limit": {"max_bytes": 65536}},
    }


def http(url: str, token: str | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def cells(row: Any) -> list[str]:
    return [c.strip() for c in row.locator("td").all_inner_texts()]


def test_admin_ui_in_a_real_browser(tmp_path: Path) -> None:
    expect = sync_api.expect
    with LiveGateway(config) as live, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS, timeout=20000)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(8000)
            errors: list[str] = []
            page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
            api_calls: list[str] = []
            page.on("request", lambda r: api_calls.append(r.url) if "/ui" not in r.url else None)

            # the static page needs no token, and its headers lock it down
            response = page.goto(live.admin_url + "/ui")  # redirected to /ui/
            assert response is not None and response.status == 200 and response.url == live.admin_url + "/ui/"
            headers = response.headers
            assert headers["content-security-policy"].startswith("default-src 'self'")
            assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-store"

            # without the token: the form, no data, and the data endpoints refuse
            expect(page.locator("#login")).to_be_visible()
            expect(page.locator("#dashboard")).to_be_hidden()
            assert page.locator("#routes tbody tr").count() == 0
            assert api_calls == []  # the page asked the API nothing
            for path in ("/stats", "/status", "/routes", "/upstreams", "/plugins"):
                assert http(live.admin_url + path)[0] == 401, path

            # a wrong token: a clear message, still no data
            page.fill("#token", "not-the-token-not-the-token")
            page.click("button[type=submit]")
            expect(page.locator("#login-error")).to_have_text("Wrong token: the admin API refused it (401).")
            expect(page.locator("#dashboard")).to_be_hidden()
            # the browser logs the refused request itself; nothing else may be in the console
            assert all("401" in e for e in errors), errors
            errors.clear()

            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            expect(page.locator("#dashboard")).to_be_visible()
            assert page.evaluate("sessionStorage.getItem('triogate-admin-token')") == TOKEN
            assert page.evaluate("localStorage.length") == 0  # the tab only

            # routes in match order, as the config says, plugins in their run order
            status, routes = http(live.admin_url + "/routes", TOKEN)
            assert status == 200
            rows = page.locator("#routes tbody tr")
            expect(rows).to_have_count(2)
            by_name = {cells(rows.nth(i))[1]: cells(rows.nth(i)) for i in range(2)}
            assert [cells(rows.nth(i))[1] for i in range(2)] == [r["route"] for r in routes]
            users = by_name["users"]
            assert users[2:7] == ["/api/users", "prefix", "GET HEAD POST", "any", "users"]  # GET allows HEAD
            (api_users,) = [r for r in routes if r["route"] == "users"]
            assert set(api_users["plugins"]) == {"request-size-limit", "cors", "rate-limit"}
            assert users[7] == " → ".join(api_users["plugins"])
            assert by_name["orders"][2:7] == ["/api/orders", "prefix", "any", "any", "orders"]

            # upstream targets with their health, circuit and live numbers
            targets = page.locator("#upstreams tbody tr")
            expect(targets).to_have_count(3)
            for i, up in enumerate(live.upstreams):
                row = page.locator(f"#upstreams tbody tr[data-target='{up.url}']")
                expect(row.locator("td").nth(2)).to_have_text("healthy")
                assert cells(row)[:2] == ["users" if i < 2 else "orders", up.url]
                assert cells(row)[3] == "closed"

            # installed plugins with versions and priorities, and where they are used
            rl = page.locator("#plugins tbody tr", has_text="rate-limit").first
            rl_cells = cells(rl)
            assert rl_cells[0] == "rate-limit" and rl_cells[1] == "triogate-rate-limit" and rl_cells[2]
            assert rl_cells[3].isdigit() and rl_cells[4] == "users"
            rsl = cells(page.locator("#plugins tbody tr", has_text="request-size-limit").first)
            assert rsl[4] == "every route"

            # traffic arriving shows up without reloading the page
            traffic = page.locator("#traffic tbody tr[data-route='users']")
            expect(traffic.locator("td").nth(5)).to_have_text("0")
            for _ in range(30):
                assert http(live.url + "/api/users/1")[0] == 200
            for _ in range(3):
                assert http(live.url + "/api/orders/fail")[0] == 503
            assert http(live.url + "/nowhere")[0] == 404
            expect(traffic.locator("td").nth(5)).to_have_text("30")
            assert float(cells(traffic)[1]) > 0 and cells(traffic)[3] != "–"
            orders = page.locator("#traffic tbody tr[data-route='orders']")
            expect(orders.locator("td").nth(6)).to_have_text("3")
            expect(orders).to_have_class("has-errors")
            expect(page.locator("#traffic tbody tr[data-route='']")).to_contain_text("(no route matched)")

            # a target going down turns unhealthy on the page
            live.call(live.upstreams[1].stop)
            down = page.locator(f"#upstreams tbody tr[data-target='{live.upstreams[1].url}']")
            expect(down.locator("td").nth(2)).to_have_text("unhealthy")
            expect(down.locator("td").nth(2)).to_have_class("bad")
            expect(page.locator(f"#upstreams tbody tr[data-target='{live.upstreams[0].url}'] td").nth(2)
                   ).to_have_text("healthy")

            # the last reload's outcome: a rejected one names its errors, the config version stays
            expect(page.locator("#reload")).to_contain_text("No reload since the gateway started")
            if os.environ.get("TRIOGATE_SCREENSHOT"):  # a short path in the error the screenshot shows
                tmp_path = Path("/tmp/triogate")
                tmp_path.mkdir(exist_ok=True)
            bad = config(live.upstreams)
            bad["routes"]["orders"]["upstream"] = "payments"
            (tmp_path / "gateway.toml").write_text(tomli_w.dumps(bad))
            assert live.reload_file(tmp_path / "gateway.toml")
            expect(page.locator("#reload-result")).to_contain_text("Last reload rejected")
            expect(page.locator("#reload-result")).to_have_class("bad")
            expect(page.locator("#reload li")).to_contain_text("routes.orders.upstream")
            expect(page.locator("#summary")).to_contain_text("config version 1 ")

            if os.environ.get("TRIOGATE_SCREENSHOT"):
                page.wait_for_timeout(1600)  # one more refresh: rates settle
                page.screenshot(path=os.environ["TRIOGATE_SCREENSHOT"], full_page=True)

            # an applied reload: the page notices the new config version and shows the new routes
            good = config(live.upstreams)
            good["routes"]["health"] = {"paths": ["/health"], "upstream": "orders"}
            (tmp_path / "gateway.toml").write_text(tomli_w.dumps(good))
            assert live.reload_file(tmp_path / "gateway.toml") == []
            expect(page.locator("#reload-result")).to_contain_text("Last reload applied")
            expect(page.locator("#routes tbody tr")).to_have_count(3)
            expect(page.locator("#summary")).to_contain_text("config version 2 ")

            # the token stays for the tab's reloads; "Forget token" clears the page
            page.reload()
            expect(page.locator("#routes tbody tr")).to_have_count(3)
            page.click("#logout")
            expect(page.locator("#login")).to_be_visible()
            assert page.locator("#routes tbody tr").count() == 0
            assert page.evaluate("sessionStorage.length") == 0
            page.wait_for_timeout(1600)  # no refresh after that: no request without the token, no message
            expect(page.locator("#login-error")).to_be_hidden()
            assert page.locator("#routes tbody tr").count() == 0
            assert errors == []
        finally:
            browser.close()
