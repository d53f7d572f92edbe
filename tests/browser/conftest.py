"""Browser tests: the real ASGI app served by daphne in a thread, driven by Debian's chromium.

Daphne runs in this process (a thread), so it shares the test database with the test
and the in-thread Celery worker. Playwright drives /usr/bin/chromium; its own browser
download is never used.
"""

from __future__ import annotations

import os
import shutil
import threading

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


class LiveServer:
    """Daphne serving the project's ASGI app (static files included) on a free port."""

    def __init__(self):
        from channels.routing import ProtocolTypeRouter
        from daphne.server import Server
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
        from django.core.asgi import get_asgi_application

        from assistant.asgi import application

        # Production serves /static/ from nginx; here the app serves it, as under DEBUG.
        app = ProtocolTypeRouter(
            {
                "http": ASGIStaticFilesHandler(get_asgi_application()),
                "websocket": application.application_mapping["websocket"],
            }
        )
        self.ready = threading.Event()
        self.server = Server(
            application=app,
            endpoints=["tcp:port=0:interface=127.0.0.1"],
            signal_handlers=False,
            ready_callable=self.ready.set,
            verbosity=0,
        )
        self.thread = threading.Thread(target=self.server.run, name="daphne", daemon=True)

    def start(self) -> LiveServer:
        from tests.fakes.server import wait_for

        self.thread.start()
        assert self.ready.wait(30), "daphne did not start"
        host, port = wait_for(lambda: self.server.listening_addresses, timeout=30)[0]
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        from twisted.internet import reactor

        reactor.callFromThread(self.server.stop)
        self.thread.join(10)


@pytest.fixture(scope="session")
def live_server_url(celery_session_worker):
    """The ASGI app on a free port for the whole session (Twisted's reactor runs once)."""
    server = LiveServer().start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def browser():
    """Chromium for one test module (Playwright's sync API must not outlive it)."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        message = f"chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it (.ci/run): a missing browser is a failure
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread, so Django would refuse
    # the test's ORM calls; nothing else runs on that loop meanwhile (Django's docs
    # give this setting for Playwright).
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, live_server_url):
    """Open pages in fresh browser contexts (separate cookies), closed after the test."""
    contexts = []

    def open_page():
        context = browser.new_context(base_url=live_server_url, accept_downloads=True)
        context.set_default_timeout(30_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def admin_login(page, username: str, password: str, next_path: str = "/console/") -> None:
    """Log in through the admin's login form, as staff do."""
    page.goto(next_path)
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"**{next_path}")
