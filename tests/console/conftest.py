"""Console personas: staff in the console groups the migration creates, and staff in none."""

from __future__ import annotations

import importlib

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import Group, Permission

from assistant.asgi import application

# The groups the data migration creates (transactional tests flush them away).
GROUPS = importlib.import_module("apps.conversations.migrations.0003_console_groups").GROUPS


def console_group(name: str) -> Group:
    group, _ = Group.objects.get_or_create(name=name)
    group.permissions.set(
        Permission.objects.filter(
            content_type__app_label="conversations", codename__in=GROUPS[name]
        )
    )
    return group


def _staff(django_user_model, name: str, group: str | None):
    user = django_user_model.objects.create_user(name, password=f"{name}-password-1", is_staff=True)
    if group:
        user.groups.add(console_group(group))
    return user


@pytest.fixture
def viewer(django_user_model, transactional_db):
    """Staff who may watch conversations but not take them over."""
    return _staff(django_user_model, "viewer", "Console viewers")


@pytest.fixture
def operator(django_user_model, transactional_db):
    """Staff who may watch, take over and reply."""
    return _staff(django_user_model, "operator", "Console operators")


@pytest.fixture
def bare_staff(django_user_model, transactional_db):
    """Staff (admin login) without any conversation permission."""
    return _staff(django_user_model, "bare", None)


def staff_socket(client, user, path: str) -> WebsocketCommunicator:
    """A websocket to `path` carrying `user`'s session (or none for user=None)."""
    headers = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"testserver")]
    if user is not None:
        client.force_login(user)
        cookie = (
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, path, headers=headers)
