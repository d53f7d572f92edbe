"""The role matrix (issue 13): each role against every admin page, API operation, console
page and websocket, expecting what the roles promise:

- Admin: everything.
- Operator: bots, prompts and profiles, pairing, unprocessed events, takeover and retries;
  providers only read (their keys are write-only); no users, groups, tokens or lockouts.
- Reviewer: reads conversations, messages, feedback and history, exports; no configuration.
- Staff with no role, and anonymous visitors: nothing.

The lists of what exists are derived from the code (the admin's registry, the OpenAPI
schema, the console's and the websockets' URL patterns), so a new model, endpoint, page or
socket without an entry here fails `test_every_*_has_an_entry` until someone decides who
may use it. Refused writes change nothing in the database; no page or answer ever shows a
secret.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import pytest
from channels.testing import WebsocketCommunicator
from django.apps import apps as django_apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.core import serializers
from django.test import Client
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.audit.services import audit_record
from apps.bots.choices import Platform
from apps.bots.models import PairingRequest, UnprocessedEvent
from apps.conversations import urls as console_urls
from apps.conversations.choices import Author, Direction, MessageStatus, Rating
from apps.conversations.models import Conversation, Feedback, Message
from apps.core.roles import ADMIN, OPERATOR, REVIEWER, roles_sync
from apps.guard.models import SINGLETON_ID, FloodLimits
from apps.routing.services import release_create, routing_rule_create, variant_create
from apps.skills.services import skill_instance_create
from assistant import routing
from tests.factories import make_profile, make_provider, make_telegram_bot, make_web_bot

NO_ROLE = "staff, no role"
ANONYMOUS = "anonymous"
PERSONAS = [ADMIN, OPERATOR, REVIEWER, NO_ROLE, ANONYMOUS]

# Stored in the world below; no page, export or API answer may contain them.
SECRETS = {
    "api_key": "sk-live-SECRET-4f1c9e2b7a",
    "header": "Bearer hdr-SECRET-9b8e7d6c",
    "telegram_token": "123456:TG-SECRET-AAbbCCddEE",
    "webhook_secret": "whsec-SECRET-1a2b3c4d",
    "skill_secret": "hmac-SECRET-5e6f7a8b",
}

# --------------------------------------------------------------------------------------
# The expected matrix.
#
# admin: registered model -> what the admin lets the role do with it: "view", "add",
#   "change", "delete" (as the admin's pages show them), and the names of the admin
#   actions it offers (delete_selected aside, which follows "delete"). A model a role
#   does not list is closed to it. Admin lists every registered model.

ADMIN_PAGES = {
    "auth.user": "view add change delete",
    "auth.group": "view add change delete",
    "authtoken.tokenproxy": "view add change delete",
    "axes.accessattempt": "view change delete cleanup_expired_attempts",
    "axes.accesslog": "view change delete",
    "axes.accessfailurelog": "view change delete",
    "audit.auditevent": "view",
    "providers.provider": "view add change delete end_cooldown",
    "providers.modelprofile": "view add change delete",
    "bots.bot": "view add change delete",
    "bots.pairingrequest": "view change delete approve_requests reject_requests",
    # An unprocessed event is never edited, only replayed or dismissed.
    "bots.unprocessedevent": "view delete replay_events dismiss_events",
    # Conversations, messages and feedback come from chats: never added by hand.
    "conversations.conversation": "view change delete take_over hand_back",
    "conversations.feedback": "view change delete",
    "conversations.message": "view change delete retry_failed",
    # One row of limits, made on first view: never added or deleted.
    "guard.floodlimits": "view change",
    "routing.routingrule": "view add change delete",
    "skills.skillinstance": "view add change delete",
    "routing.variant": "view add change delete",
    "routing.release": "view add change delete pause_releases resume_releases",
}
OPERATOR_PAGES = {
    "audit.auditevent": "view",
    # Providers are read only; ending a cooldown is operations, not configuration.
    "providers.provider": "view end_cooldown",
    "providers.modelprofile": "view add change delete",
    "bots.bot": "view add change delete",
    "bots.pairingrequest": "view change approve_requests reject_requests",
    "bots.unprocessedevent": "view replay_events dismiss_events",
    "conversations.conversation": "view take_over hand_back",
    "conversations.feedback": "view",
    "conversations.message": "view change retry_failed",
    "guard.floodlimits": "view change",
    "routing.routingrule": "view add change delete",
    "skills.skillinstance": "view add change delete",
    "routing.variant": "view add change delete",
    "routing.release": "view add change delete pause_releases resume_releases",
}
REVIEWER_PAGES = {
    "conversations.conversation": "view",
    "conversations.feedback": "view",
    "conversations.message": "view",
}

# api: the operations of the OpenAPI schema, "METHOD path", grouped.
PROVIDERS_READ = {"GET /api/v1/providers/", "GET /api/v1/providers/{id}/"}
PROVIDERS_WRITE = {
    "POST /api/v1/providers/",
    "PUT /api/v1/providers/{id}/",
    "PATCH /api/v1/providers/{id}/",
    "DELETE /api/v1/providers/{id}/",
}
PROFILES = {
    "GET /api/v1/profiles/",
    "GET /api/v1/profiles/{id}/",
    "POST /api/v1/profiles/",
    "PUT /api/v1/profiles/{id}/",
    "PATCH /api/v1/profiles/{id}/",
    "DELETE /api/v1/profiles/{id}/",
}
BOTS = {
    "GET /api/v1/bots/",
    "GET /api/v1/bots/{id}/",
    "POST /api/v1/bots/",
    "PUT /api/v1/bots/{id}/",
    "PATCH /api/v1/bots/{id}/",
    "DELETE /api/v1/bots/{id}/",
}
CONVERSATIONS_READ = {
    "GET /api/v1/conversations/",
    "GET /api/v1/conversations/{id}/",
    "GET /api/v1/conversations/{id}/messages/",
}
TAKEOVER = {
    "POST /api/v1/conversations/{id}/take-over/",
    "POST /api/v1/conversations/{id}/hand-back/",
    "POST /api/v1/conversations/{id}/reply/",
}
RETRY = {"POST /api/v1/conversations/{id}/messages/{message_id}/retry/"}
SKILLS = {
    "GET /api/v1/skills/",
    "GET /api/v1/skills/{id}/",
    "POST /api/v1/skills/",
    "PUT /api/v1/skills/{id}/",
    "PATCH /api/v1/skills/{id}/",
    "DELETE /api/v1/skills/{id}/",
}
ROUTING_RULES = {
    "GET /api/v1/routing-rules/",
    "GET /api/v1/routing-rules/{id}/",
    "POST /api/v1/routing-rules/",
    "PUT /api/v1/routing-rules/{id}/",
    "PATCH /api/v1/routing-rules/{id}/",
    "DELETE /api/v1/routing-rules/{id}/",
}
VARIANTS_AND_RELEASES = {
    f"{method} /api/v1/{resource}/{suffix}"
    for resource in ("variants", "releases")
    for method, suffix in (
        ("GET", ""),
        ("GET", "{id}/"),
        ("POST", ""),
        ("PUT", "{id}/"),
        ("PATCH", "{id}/"),
        ("DELETE", "{id}/"),
    )
}

# console: the pages of apps/conversations/urls.py (and the web chat of a disabled bot).
CONSOLE_READ = {
    "live",
    "conversation",
    "history",
    "history conversation",
    "export csv",
    "export jsonl",
    "dashboard",
}
CONSOLE_TAKEOVER = {"take over", "hand back", "reply"}
DISABLED_WEB_CHAT = "web chat of a disabled bot"

# sockets: the routes of assistant/routing.py. An enabled bot's web chat is open to all.
CONSOLE_SOCKETS = {"console", "console conversation"}
ENABLED_CHAT_SOCKET = "web chat"
DISABLED_CHAT_SOCKET = "web chat of a disabled bot"

EXPECTED = {
    ADMIN: {
        "admin": ADMIN_PAGES,
        "api": PROVIDERS_READ
        | PROVIDERS_WRITE
        | PROFILES
        | BOTS
        | CONVERSATIONS_READ
        | TAKEOVER
        | RETRY
        | ROUTING_RULES
        | SKILLS
        | VARIANTS_AND_RELEASES,
        "console": CONSOLE_READ | CONSOLE_TAKEOVER | {DISABLED_WEB_CHAT},
        "sockets": CONSOLE_SOCKETS | {ENABLED_CHAT_SOCKET, DISABLED_CHAT_SOCKET},
    },
    OPERATOR: {
        "admin": OPERATOR_PAGES,
        "api": PROVIDERS_READ
        | PROFILES
        | BOTS
        | CONVERSATIONS_READ
        | TAKEOVER
        | RETRY
        | ROUTING_RULES
        | SKILLS
        | VARIANTS_AND_RELEASES,
        "console": CONSOLE_READ | CONSOLE_TAKEOVER | {DISABLED_WEB_CHAT},
        "sockets": CONSOLE_SOCKETS | {ENABLED_CHAT_SOCKET, DISABLED_CHAT_SOCKET},
    },
    REVIEWER: {
        "admin": REVIEWER_PAGES,
        "api": CONVERSATIONS_READ,
        "console": CONSOLE_READ,
        "sockets": CONSOLE_SOCKETS | {ENABLED_CHAT_SOCKET},
    },
    NO_ROLE: {"admin": {}, "api": set(), "console": set(), "sockets": {ENABLED_CHAT_SOCKET}},
    ANONYMOUS: {"admin": {}, "api": set(), "console": set(), "sockets": {ENABLED_CHAT_SOCKET}},
}

# --------------------------------------------------------------------------------------
# The world every request runs against.


@dataclass
class World:
    provider: object
    profile: object
    spare_provider: object
    spare_profile: object
    bot: object
    disabled_bot: object
    telegram_bot: object
    conversation: Conversation
    failed: Message
    holder: object
    rule: object
    skill: object
    spare_variant: object
    release: object


def _world(django_user_model) -> World:
    roles_sync()  # transactional tests elsewhere flush the groups the migration made
    FloodLimits.objects.get_or_create(pk=SINGLETON_ID)  # the admin makes it on first view
    provider = make_provider(
        base_url="http://127.0.0.1:9/v1",
        api_key=SECRETS["api_key"],
        extra_headers={"Authorization": SECRETS["header"]},
    )
    profile = make_profile(provider=provider)
    # Rows nothing uses, which the API's detail operations (DELETE too) work on.
    spare_provider = make_provider(
        base_url="http://127.0.0.1:9/v1",
        api_key=SECRETS["api_key"],
        extra_headers={"Authorization": SECRETS["header"]},
    )
    spare_profile = make_profile(provider=provider)
    bot = make_web_bot(profile=profile)
    disabled_bot = make_web_bot(profile=profile, enabled=False)
    telegram_bot = make_telegram_bot(
        profile=profile,
        api_base_url="http://127.0.0.1:9",
        telegram_token=SECRETS["telegram_token"],
        telegram_webhook_secret=SECRETS["webhook_secret"],
    )
    holder = django_user_model.objects.create_user("holder", is_staff=True)
    conversation = Conversation.objects.create(
        bot=bot, chat_id="visitor-1", chat_type="private", handled_by=holder
    )
    question = Message.objects.create(
        conversation=conversation,
        bot=bot,
        direction=Direction.IN,
        author=Author.USER,
        sender_id="visitor-1",
        text="hello",
        external_id="m-1",
        status=MessageStatus.ANSWERED,
    )
    answer = Message.objects.create(
        conversation=conversation,
        bot=bot,
        direction=Direction.OUT,
        author=Author.ASSISTANT,
        text="hi there",
        reply_to=question,
        status=MessageStatus.DELIVERED,
    )
    failed = Message.objects.create(
        conversation=conversation,
        bot=bot,
        direction=Direction.IN,
        author=Author.USER,
        sender_id="visitor-1",
        text="are you there?",
        external_id="m-2",
        status=MessageStatus.FAILED,
        error="model unavailable",
    )
    Feedback.objects.create(message=answer, rating=Rating.HELPFUL, platform_user_id="visitor-1")
    PairingRequest.objects.create(
        bot=telegram_bot, platform_user_id="42", display_name="Stranger", code="PAIR42"
    )
    UnprocessedEvent.objects.create(
        bot=telegram_bot, platform=Platform.TELEGRAM, body=b'{"update_id": 1}', reason="no chat"
    )
    audit_record(action="bot.update", actor=holder, target=bot, changes={"name": "x"})
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    AccessAttempt.objects.create(
        username="mallory", ip_address="203.0.113.9", failures_since_start=3
    )
    AccessLog.objects.create(username="holder", ip_address="203.0.113.10")
    AccessFailureLog.objects.create(username="mallory", ip_address="203.0.113.9")
    Token.objects.create(user=holder)
    rule = routing_rule_create(name="orders", keywords=["订单"], action="profile", profile=profile)
    skill = skill_instance_create(
        bot=bot,
        name="Open a ticket",
        skill="http_action",
        config={
            "url": "http://127.0.0.1:9/tickets",
            "secret": SECRETS["skill_secret"],
            "reply_template": "#{id}",
        },
    )
    control = variant_create(rule=rule, name="control", weight=100, profile=profile)
    candidate = variant_create(rule=rule, name="candidate", weight=0, profile=profile)
    spare_variant = variant_create(bot=bot, name="spare", weight=1, profile=profile)
    variant_create(bot=bot, name="spare-b", weight=0, profile=profile)
    release = release_create(
        name="candidate", variant=candidate, control=control, steps=[5, 20, 100], min_sample=10
    )
    return World(
        provider,
        profile,
        spare_provider,
        spare_profile,
        bot,
        disabled_bot,
        telegram_bot,
        conversation,
        failed,
        holder,
        rule,
        skill,
        spare_variant,
        release,
    )


def _persona(django_user_model, persona: str):
    if persona == ANONYMOUS:
        return None
    user = django_user_model.objects.create_user(
        f"persona-{persona.split(',')[0].lower()}", password="persona-password-1", is_staff=True
    )
    if persona != NO_ROLE:
        user.groups.add(Group.objects.get(name=persona))
    return user


@pytest.fixture
def world(db, django_user_model) -> World:
    return _world(django_user_model)


def database_state() -> str:
    """Every row of the project's models (and users, groups), to tell whether anything changed."""
    models = [
        model
        for model in django_apps.get_models()
        if model._meta.app_label
        in {"providers", "bots", "conversations", "audit", "auth", "routing", "skills"}
        and model is not Permission
    ]
    return "\n".join(
        serializers.serialize("json", model._default_manager.order_by("pk")) for model in models
    )


def body_of(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def assert_no_secret(content: bytes, where: str) -> None:
    text = content.decode("utf-8", "replace")
    shown = [name for name, value in SECRETS.items() if value in text]
    assert not shown, f"{where} shows {shown}"


def refused_status(persona: str) -> tuple[int, ...]:
    return (302,) if persona == ANONYMOUS else (403,)


def persona_ids() -> list[str]:
    return [p.replace(", ", "-").replace(" ", "-") for p in PERSONAS]


# --------------------------------------------------------------------------------------
# Every thing that exists has an entry.


def registered_models() -> set[str]:
    return {model._meta.label_lower for model in admin.site._registry}


def api_operations() -> set[str]:
    document = SchemaGenerator().get_schema(request=None, public=True)
    return {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }


def test_every_admin_model_has_an_entry():
    assert set(ADMIN_PAGES) == registered_models()
    for persona, expected in EXPECTED.items():
        assert set(expected["admin"]) <= set(ADMIN_PAGES), persona


def test_every_api_operation_has_an_entry():
    assert EXPECTED[ADMIN]["api"] == api_operations()
    for persona, expected in EXPECTED.items():
        assert expected["api"] <= EXPECTED[ADMIN]["api"], persona


def test_every_console_page_and_socket_has_an_entry():
    named = {pattern.name for pattern in console_urls.urlpatterns}
    assert named == {request.url_name for request in CONSOLE_REQUESTS.values()}
    routes = {str(pattern.pattern) for pattern in routing.websocket_urlpatterns}
    assert routes == {route for route, _kwargs in SOCKETS.values()}


# --------------------------------------------------------------------------------------
# The admin.

PAGE_PERMISSION = {
    "changelist": "view",
    "add": "add",
    "change": "view",
    "delete": "delete",
    "history": "view",
}
STANDARD_ADMIN_URLS = {"changelist", "add", "change", "delete", "history", "autocomplete"}
# A model admin's own pages (get_urls) beyond the standard ones: the model and what the
# role must be able to do with it. The profile test sends a probe, which costs tokens.
EXTRA_ADMIN_PAGES = {
    "auth_user_password_change": ("auth.user", "change"),
    "providers_modelprofile_test": ("providers.modelprofile", "change"),
    # "Which rule answers this?": about no one rule, so it takes no id.
    "routing_routingrule_explain": ("routing.routingrule", "view"),
}
PAGES_WITHOUT_ID = {"routing_routingrule_explain"}


def extra_admin_urls() -> set[str]:
    names = set()
    for model, model_admin in admin.site._registry.items():
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        for pattern in model_admin.get_urls():
            name = getattr(pattern, "name", None)
            if name and name.removeprefix(prefix) not in STANDARD_ADMIN_URLS:
                names.add(name)
    return names


def test_every_extra_admin_page_has_an_entry():
    assert extra_admin_urls() == set(EXTRA_ADMIN_PAGES)


@pytest.mark.parametrize("page", sorted(EXTRA_ADMIN_PAGES))
@pytest.mark.parametrize("persona", PERSONAS, ids=persona_ids())
def test_extra_admin_pages(world, django_user_model, persona, page):
    user = _persona(django_user_model, persona)
    client = Client()
    if user is not None:
        client.force_login(user)
    model, needed = EXTRA_ADMIN_PAGES[page]
    obj = django_apps.get_model(model)._default_manager.order_by("pk").first()

    response = client.get(
        reverse(f"admin:{page}", args=[] if page in PAGES_WITHOUT_ID else [obj.pk])
    )

    allowed = needed in EXPECTED[persona]["admin"].get(model, "").split()
    assert response.status_code == (200 if allowed else refused_status(persona)[0])
    assert_no_secret(response.content, f"{page} for {persona}")


@pytest.mark.parametrize("model", sorted(ADMIN_PAGES))
@pytest.mark.parametrize("persona", PERSONAS, ids=persona_ids())
def test_admin_pages(world, django_user_model, persona, model):
    user = _persona(django_user_model, persona)
    client = Client()
    if user is not None:
        client.force_login(user)
    allowed = set(EXPECTED[persona]["admin"].get(model, "").split())
    model_class = django_apps.get_model(model)
    obj = model_class._default_manager.order_by("pk").first()
    assert obj is not None, f"the world has no {model} to open"
    app_label, model_name = model.split(".")
    urls = {
        "changelist": reverse(f"admin:{app_label}_{model_name}_changelist"),
        "add": reverse(f"admin:{app_label}_{model_name}_add"),
        "change": reverse(f"admin:{app_label}_{model_name}_change", args=[obj.pk]),
        "delete": reverse(f"admin:{app_label}_{model_name}_delete", args=[obj.pk]),
        "history": reverse(f"admin:{app_label}_{model_name}_history", args=[obj.pk]),
    }
    before = database_state()

    answers = {page: client.get(url) for page, url in urls.items()}

    # A singleton's list goes straight to its one row (guard.floodlimits): that is open.
    actual = {
        page: 200 if response.get("Location") == urls["change"] else response.status_code
        for page, response in answers.items()
    }
    expected = {
        page: 200 if PAGE_PERMISSION[page] in allowed else refused_status(persona)[0]
        for page in urls
    }
    assert actual == expected
    for page, response in answers.items():
        assert_no_secret(response.content, f"{model} {page} for {persona}")
    if "view" in allowed:
        context = answers["change"].context_data
        shown = {
            name
            for name in ("view", "add", "change", "delete")
            if context[f"has_{name}_permission"]
        }
        changelist = answers["changelist"]
        action_form = (
            changelist.context_data["action_form"] if hasattr(changelist, "context_data") else None
        )
        actions = (
            {
                name
                for name, _label in action_form.fields["action"].choices
                if name and name != "delete_selected"
            }
            if action_form
            else set()
        )
        assert shown | actions == allowed
    assert database_state() == before  # GETs change nothing


# --------------------------------------------------------------------------------------
# The API.


def api_request(world: World, operation: str) -> tuple[str, str, dict | None]:
    method, path = operation.split(" ")
    resource = path.split("/")[3]
    ids = {
        "providers": world.spare_provider.pk,
        "profiles": world.spare_profile.pk,
        "bots": world.bot.pk,
        "conversations": world.conversation.pk,
        "routing-rules": world.rule.pk,
        "skills": world.skill.pk,
        "variants": world.spare_variant.pk,
        "releases": world.release.pk,
    }
    url = path.replace("{id}", str(ids[resource])).replace("{message_id}", str(world.failed.pk))
    bodies = {
        # Nothing listens there: saved without its credentials checked (see test_api.py).
        "providers": {
            "name": "another",
            "base_url": "http://127.0.0.1:9/v2",
            "api_key": "sk-x",
            "save_anyway": True,
        },
        "profiles": {"name": "another", "provider": world.provider.pk, "model": "other-model"},
        "bots": {"name": "another", "platform": Platform.WEB, "profile": world.profile.pk},
        "routing-rules": {"name": "another", "action": "ignore", "keywords": ["spam"]},
        "skills": {"bot": str(world.bot.pk), "name": "another", "skill": "help_menu", "config": {}},
        "variants": {"bot": str(world.telegram_bot.pk), "name": "b", "profile": world.profile.pk},
        # The bot's variants: the rule's pair has its release running already.
        "releases": {
            "name": "another",
            "variant": world.bot.variants.get(name="spare-b").pk,
            "control": world.spare_variant.pk,
            "steps": [50, 100],
        },
    }
    body = None
    if method in {"POST", "PUT", "PATCH"}:
        body = {"text": "A person answers now."} if path.endswith("/reply/") else None
        body = bodies.get(resource, body)
    return method.lower(), url, body


@pytest.mark.parametrize("operation", sorted(EXPECTED[ADMIN]["api"]))
@pytest.mark.parametrize("persona", PERSONAS, ids=persona_ids())
def test_api_operations(world, django_user_model, persona, operation):
    user = _persona(django_user_model, persona)
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    method, url, body = api_request(world, operation)
    before = database_state()

    response = getattr(client, method)(url, body, format="json")

    assert_no_secret(response.content, f"{operation} for {persona}")
    if operation in EXPECTED[persona]["api"]:
        assert 200 <= response.status_code < 300, response.content
        if method == "get":
            assert database_state() == before, f"{operation} changed something"
        else:
            assert database_state() != before, f"{operation} answered but changed nothing"
    else:
        assert response.status_code == (401 if persona == ANONYMOUS else 403), response.content
        assert database_state() == before, f"{operation} was refused but changed something"


@pytest.mark.parametrize("persona", PERSONAS, ids=persona_ids())
def test_api_schema_and_docs_are_for_staff(world, django_user_model, persona):
    user = _persona(django_user_model, persona)
    client = Client()
    if user is not None:
        client.force_login(user)

    schema, docs = client.get("/api/schema/"), client.get("/api/docs/")

    if persona == ANONYMOUS:
        assert schema.status_code in (401, 403)
        assert docs.status_code in (401, 403)
    else:  # staff: the schema documents every endpoint, not what this role may do
        assert schema.status_code == 200
        assert docs.status_code == 200


# --------------------------------------------------------------------------------------
# The console pages (and the web chat's page).


@dataclass
class ConsoleRequest:
    url_name: str
    method: str = "get"
    kwargs: str = "conversation"  # which URL arguments: "conversation", "", "csv", "jsonl"


CONSOLE_REQUESTS = {
    "live": ConsoleRequest("console", kwargs=""),
    "conversation": ConsoleRequest("console-conversation"),
    "take over": ConsoleRequest("console-take-over", "post"),
    "hand back": ConsoleRequest("console-hand-back", "post"),
    "reply": ConsoleRequest("console-reply", "post"),
    "history": ConsoleRequest("console-history", kwargs=""),
    "history conversation": ConsoleRequest("console-history-conversation"),
    "export csv": ConsoleRequest("console-history-export", kwargs="csv"),
    "export jsonl": ConsoleRequest("console-history-export", kwargs="jsonl"),
    "dashboard": ConsoleRequest("console-dashboard", kwargs=""),
}


@pytest.mark.parametrize("page", [*CONSOLE_REQUESTS, DISABLED_WEB_CHAT])
@pytest.mark.parametrize("persona", PERSONAS, ids=persona_ids())
def test_console_pages(world, django_user_model, persona, page):
    user = _persona(django_user_model, persona)
    client = Client()
    if user is not None:
        client.force_login(user)
    if page == DISABLED_WEB_CHAT:
        method, url, refused = "get", f"/chat/{world.disabled_bot.pk}/", (404,)
    else:
        request = CONSOLE_REQUESTS[page]
        args = {"conversation": [world.conversation.pk], "": []}.get(request.kwargs)
        url = reverse(request.url_name, args=args if args is not None else [request.kwargs])
        method, refused = request.method, refused_status(persona)
    before = database_state()

    response = getattr(client, method)(
        url,
        {"text": "A person answers now."} if method == "post" else None,
        HTTP_ACCEPT="application/json" if method == "post" else "text/html",
    )

    content = body_of(response)
    assert_no_secret(content, f"{page} for {persona}")
    if page in EXPECTED[persona]["console"]:
        assert response.status_code == 200, content[:500]
        if method == "post":
            assert json.loads(content)["ok"] is True
            assert database_state() != before, f"{page} answered but changed nothing"
        else:
            assert database_state() == before, f"{page} changed something"
    else:
        assert response.status_code in refused
        if persona == ANONYMOUS and page != DISABLED_WEB_CHAT:
            assert response["Location"].startswith("/admin/login/")
        assert database_state() == before, f"{page} was refused but changed something"


# --------------------------------------------------------------------------------------
# The websockets: accepted or closed with 4403; the staff sockets only listen.

SOCKETS = {
    "console": ("ws/console/", {}),
    "console conversation": (
        "ws/console/conversations/<int:conversation_id>/",
        {"conversation_id": "conversation"},
    ),
    ENABLED_CHAT_SOCKET: ("ws/chat/<uuid:bot_id>/", {"bot_id": "bot"}),
    DISABLED_CHAT_SOCKET: ("ws/chat/<uuid:bot_id>/", {"bot_id": "disabled_bot"}),
}

# What someone might try on a staff socket: none of it may act (staff act through the
# console's POST endpoints, which check the takeover permission).
ACTION_FRAMES = [
    {"type": "take_over"},
    {"type": "hand_back"},
    {"type": "reply", "text": "sent over the socket"},
    {"type": "message", "text": "sent over the socket", "id": "frame-1"},
]


def socket_path(world: World, socket: str) -> str:
    route, kwargs = SOCKETS[socket]
    path = route
    for name, attribute in kwargs.items():
        converter = "int" if name == "conversation_id" else "uuid"
        path = path.replace(f"<{converter}:{name}>", str(getattr(world, attribute).pk))
    return "/" + path


def open_socket(client: Client, user, path: str) -> WebsocketCommunicator:
    from assistant.asgi import application

    # A session with a web-chat visitor id, as the enabled bot's chat page gives everyone.
    if user is not None:
        client.force_login(user)
    assert client.get(path.replace("/ws/chat/", "/chat/")).status_code in (200, 404)
    headers = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"testserver")]
    session = client.cookies.get(settings.SESSION_COOKIE_NAME)
    if session is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session.value}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


@pytest.mark.parametrize("socket", list(SOCKETS))
@pytest.mark.parametrize("persona", PERSONAS, ids=persona_ids())
def test_sockets(transactional_db, django_user_model, persona, socket):
    world = _world(django_user_model)
    user = _persona(django_user_model, persona)
    client = Client()
    if socket == DISABLED_CHAT_SOCKET:  # a visitor id from the enabled bot's page
        client.get(f"/chat/{world.bot.pk}/")
    communicator = open_socket(client, user, socket_path(world, socket))
    before = database_state()

    async def scenario():
        connected, code = await communicator.connect()
        if not connected:
            await communicator.disconnect()  # the consumer ends, not cancelled by asyncio.run
            return False, code, None
        # The list socket says nothing until something changes; the others start with
        # the conversation so far.
        first = None if socket == "console" else await communicator.receive_json_from()
        if socket in CONSOLE_SOCKETS:
            for frame in ACTION_FRAMES:
                await communicator.send_json_to(frame)
        await communicator.disconnect()
        return True, None, first

    connected, code, first = asyncio.run(scenario())

    if socket in EXPECTED[persona]["sockets"]:
        assert connected
        if socket == "console conversation":
            assert first["type"] == "snapshot"
            assert first["conversation"]["id"] == world.conversation.pk
            texts = [message["text"] for message in first["messages"]]
            assert texts == ["hello", "hi there", "are you there?"]
        elif socket != "console":
            assert first == {"type": "history", "messages": []}
        assert_no_secret(json.dumps(first).encode(), f"{socket} for {persona}")
        assert database_state() == before, "a staff socket acted on a frame"
    else:
        assert not connected
        assert code == 4403
