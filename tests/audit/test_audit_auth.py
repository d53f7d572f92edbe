"""Logins, logouts, failed logins, users, groups and permissions are audited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_logins_failed_logins_and_logouts_are_audited_without_the_password(client, staff_user):
    refused = client.post(
        "/admin/login/?next=/admin/", {"username": "staff", "password": "wrong-guess-1"}
    )
    assert refused.status_code == 200  # the form again, with an error

    client.post("/admin/login/?next=/admin/", {"username": "staff", "password": "staff-password-1"})
    client.post("/admin/logout/")

    events = list(
        AuditEvent.objects.filter(action__startswith="auth.")
        .order_by("id")
        .values_list("action", "actor__username", "changes")
    )
    assert events == [
        ("auth.login_failed", None, {"username": "staff"}),
        ("auth.login", "staff", {"username": "staff"}),
        ("auth.logout", "staff", {"username": "staff"}),
    ]
    assert all(event.ip_address == "127.0.0.1" for event in AuditEvent.objects.all())
    assert "wrong-guess" not in str(list(AuditEvent.objects.values_list("changes", flat=True)))


def test_a_groups_permissions_changed_in_the_admin_are_audited(client, staff_user):
    client.force_login(staff_user)
    view = Permission.objects.get(codename="view_conversation")
    export = Permission.objects.get(codename="view_message")

    response = client.post(
        "/admin/auth/group/add/", {"name": "Auditors", "permissions": [view.pk, export.pk]}
    )

    assert response.status_code == 302
    group = Group.objects.get(name="Auditors")
    event = AuditEvent.objects.get(action="group.permissions", target_id=str(group.pk))
    assert event.actor == staff_user
    assert event.changes["permissions"]["from"] == []
    assert len(event.changes["permissions"]["to"]) == 2
    assert AuditEvent.objects.filter(action="group.create", target_id=str(group.pk)).exists()


def test_a_users_password_change_is_audited_as_set_never_as_its_hash(
    client, staff_user, django_user_model
):
    client.force_login(staff_user)
    user = django_user_model.objects.create_user("ops", password="old-password-1")

    response = client.post(
        f"/admin/auth/user/{user.pk}/password/",
        {"password1": "New-password-9x", "password2": "New-password-9x", "usable_password": "true"},
    )

    assert response.status_code == 302
    event = AuditEvent.objects.get(action="user.password", target_id=str(user.pk))
    assert event.actor == staff_user and event.changes == {"password": "<set>"}
    stored_hash = django_user_model.objects.get(pk=user.pk).password
    for event in AuditEvent.objects.all():
        assert stored_hash not in str(event.changes)


def test_repeated_failed_logins_lock_out_and_are_audited(client, staff_user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        client.post("/admin/login/?next=/admin/", {"username": "staff", "password": "guess-1"})

    # Even the right password is refused now, for this username from this address.
    locked = client.post(
        "/admin/login/?next=/admin/", {"username": "staff", "password": "staff-password-1"}
    )

    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="auth.locked_out").exists()
    assert AuditEvent.objects.filter(action="auth.login_failed").count() >= 3
    assert not AuditEvent.objects.filter(action="auth.login").exists()
