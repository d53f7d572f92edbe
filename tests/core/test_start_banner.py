"""`make run`'s set-up and banner: the first admin's password is kept for the operator,
and the banner appears only once the web server and a worker answer."""

from __future__ import annotations

import stat
from io import StringIO

from django.core.management import call_command

from apps.core import first_admin


def test_setup_creates_the_first_admin_once_and_keeps_its_password_private(
    transactional_db, tmp_path, monkeypatch, django_user_model
):
    password_file = tmp_path / ".admin-password"
    monkeypatch.setattr(first_admin, "ADMIN_PASSWORD_FILE", password_file)

    out = StringIO()
    call_command("setup_platform", stdout=out)
    call_command("setup_platform", stdout=StringIO())  # again: nothing new

    password = password_file.read_text().strip()
    assert django_user_model.objects.get(username="admin").check_password(password)
    assert django_user_model.objects.filter(is_superuser=True).count() == 1
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert password in out.getvalue()


def test_the_banner_waits_for_the_web_server_and_a_worker_then_says_where_things_are(
    live_server, worker, web_bot
):
    port = live_server.url.rsplit(":", 1)[1]
    out = StringIO()

    call_command("announce_ready", "--web-port", port, "--once", stdout=out)

    banner = out.getvalue()
    base = f"http://127.0.0.1:{port}"
    assert "ready" in banner
    for path in ("/", "/admin/", "/console/", f"/chat/{web_bot.pk}/"):
        assert f"{base}{path}" in banner, path
    assert "admin" in banner
