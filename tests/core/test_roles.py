"""Roles: each of Admin, Operator, Reviewer (and staff with no role) against the API,
the admin and the console. The API enforces the same model permissions as the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.conversations.models import Conversation
from apps.core.roles import ADMIN, OPERATOR, REVIEWER
from tests.factories import make_profile, make_provider, make_web_bot

pytestmark = pytest.mark.django_db

ROLES = [ADMIN, OPERATOR, REVIEWER, None]


@pytest.fixture
def world(transactional_db):
    provider = make_provider(base_url="http://127.0.0.1:9/v1")
    profile = make_profile(provider=provider)
    bot = make_web_bot(profile=profile)
    conversation = Conversation.objects.create(bot=bot, chat_id="c1", chat_type="private")
    return {"provider": provider, "profile": profile, "bot": bot, "conversation": conversation}


def member(django_user_model, role: str | None):
    user = django_user_model.objects.create_user(
        f"user-{role or 'none'}".lower(), password="x-password-1", is_staff=True
    )
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def api_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def new_provider() -> dict:
    # Nothing listens there: saved without its credentials checked (see test_api.py).
    return {
        "name": "new",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key": "sk-x",
        "save_anyway": True,
    }


# (method, path from the world, body, {role: expected status})
API_MATRIX = [
    ("get", lambda w: "/api/v1/providers/", None, {ADMIN: 200, OPERATOR: 200, REVIEWER: 403}),
    ("post", lambda w: "/api/v1/providers/", new_provider, {ADMIN: 201, OPERATOR: 403}),
    (
        "patch",
        lambda w: f"/api/v1/providers/{w['provider'].pk}/",
        lambda: {"base_url": "http://127.0.0.1:9/elsewhere/v1", "save_anyway": True},
        {ADMIN: 200, OPERATOR: 403, REVIEWER: 403},
    ),
    ("get", lambda w: "/api/v1/profiles/", None, {ADMIN: 200, OPERATOR: 200, REVIEWER: 403}),
    (
        "patch",
        lambda w: f"/api/v1/profiles/{w['profile'].pk}/",
        lambda: {"system_prompt": "Be brief."},
        {ADMIN: 200, OPERATOR: 200, REVIEWER: 403},
    ),
    ("get", lambda w: "/api/v1/bots/", None, {ADMIN: 200, OPERATOR: 200, REVIEWER: 403}),
    (
        "patch",
        lambda w: f"/api/v1/bots/{w['bot'].pk}/",
        lambda: {"name": "renamed"},
        {ADMIN: 200, OPERATOR: 200, REVIEWER: 403},
    ),
    (
        "delete",
        lambda w: f"/api/v1/bots/{w['bot'].pk}/",
        None,
        {ADMIN: 204, OPERATOR: 204, REVIEWER: 403},
    ),
    (
        "get",
        lambda w: "/api/v1/conversations/",
        None,
        {ADMIN: 200, OPERATOR: 200, REVIEWER: 200},
    ),
    (
        "get",
        lambda w: f"/api/v1/conversations/{w['conversation'].pk}/messages/",
        None,
        {ADMIN: 200, OPERATOR: 200, REVIEWER: 200},
    ),
    (
        "post",
        lambda w: f"/api/v1/conversations/{w['conversation'].pk}/take-over/",
        None,
        {ADMIN: 200, OPERATOR: 200, REVIEWER: 403},
    ),
    ("get", lambda w: "/api/schema/", None, {ADMIN: 200, OPERATOR: 200, REVIEWER: 200}),
]


@pytest.mark.parametrize("role", ROLES, ids=[r or "no-role" for r in ROLES])
@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    API_MATRIX,
    ids=[f"{m} {i}" for i, (m, *_rest) in enumerate(API_MATRIX)],
)
def test_api_enforces_each_roles_permissions(
    world, django_user_model, role, method, path, body, expected
):
    client = api_for(member(django_user_model, role))

    response = getattr(client, method)(path(world), body() if body else None, format="json")

    # Staff with no role may do nothing but read the schema (staff-only documentation).
    default = 200 if path(world) == "/api/schema/" else 403
    assert response.status_code == expected.get(role, default), response.content


def test_the_api_schema_and_docs_are_not_public_by_default(client, world):
    assert APIClient().get("/api/schema/").status_code in (401, 403)
    assert client.get("/api/docs/").status_code in (302, 401, 403)


@pytest.mark.parametrize(
    ("role", "page", "expected"),
    [
        (ADMIN, "/admin/providers/provider/", 200),
        (OPERATOR, "/admin/providers/provider/", 200),
        (REVIEWER, "/admin/providers/provider/", 403),
        (OPERATOR, "/admin/bots/bot/add/", 200),
        (REVIEWER, "/admin/bots/bot/", 403),
        (OPERATOR, "/admin/auth/user/", 403),
        (ADMIN, "/admin/auth/user/", 200),
        (REVIEWER, "/console/", 200),
        (REVIEWER, "/console/history/", 200),
        (None, "/console/", 403),
    ],
)
def test_admin_and_console_pages_follow_the_role(
    client, world, django_user_model, role, page, expected
):
    client.force_login(member(django_user_model, role))

    assert client.get(page).status_code == expected
