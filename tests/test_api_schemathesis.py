"""Schemathesis against the OpenAPI schema (issue 13): every operation of /api/v1/, with
property-based inputs as an Admin, answers no 5xx and only what the schema documents
(status codes, content types, bodies).

The requests go through Django's WSGI application into the test database; each example
runs in a savepoint that is rolled back, so every example starts from the same rows and
a run is reproducible (derandomized). Bounded by MAX_EXAMPLES per operation.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.contrib.auth.models import Group
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.models import Conversation, Message
from apps.core.roles import ADMIN, roles_sync
from apps.guard.models import SINGLETON_ID, FloodLimits
from assistant.wsgi import application
from tests.factories import make_profile, make_provider, make_web_bot

MAX_EXAMPLES = 20

# No 5xx, and every answer as documented. Schemathesis's stricter "invalid input must be
# refused" check is left out: DRF ignores what it does not know (an unparseable `offset`
# means the first page), which is not a fault.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def admin_headers(db, django_user_model) -> dict[str, str]:
    """An Admin (the role, not a superuser) with a token, and rows for the ids to find."""
    roles_sync()
    # Every example exercises the API itself: the address limit (documented as 429, and
    # tested in tests/guard) would otherwise refuse most of them.
    FloodLimits.objects.update_or_create(pk=SINGLETON_ID, defaults={"api_requests_per_minute": 0})
    user = django_user_model.objects.create_user("schema-admin", is_staff=True)
    user.groups.add(Group.objects.get(name=ADMIN))
    provider = make_provider(base_url="http://127.0.0.1:9/v1", extra_headers={"X-Org": "acme"})
    profile = make_profile(provider=provider)
    bot = make_web_bot(profile=profile)
    for number in (1, 2):
        conversation = Conversation.objects.create(
            bot=bot, chat_id=f"visitor-{number}", chat_type="private"
        )
        Message.objects.create(
            conversation=conversation,
            bot=bot,
            direction=Direction.IN,
            author=Author.USER,
            sender_id=f"visitor-{number}",
            text="hello",
            external_id=f"m-{number}",
            status=MessageStatus.FAILED,
        )
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"}


@pytest.fixture
def in_test_transaction():
    """As Django's test client does: requests run inside the test's transaction, so
    nothing may close the connection at the end of a request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def served_schema() -> dict:
    """The document /api/schema/ serves (the same generator; no database needed, so the
    tests can be made when pytest collects them: schemathesis's fixture-based loader does
    not work with pytest 9)."""
    return SchemaGenerator().get_schema(request=None, public=True)


schema = schemathesis.openapi.from_dict(served_schema())
schema.app = application  # requests go through Django's WSGI application


def test_the_schema_tested_is_the_one_served(admin_headers, in_test_transaction):
    response = Client().get("/api/schema/?format=json", headers=admin_headers)

    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(served_schema()))


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_answers_as_documented(case, admin_headers, in_test_transaction):
    with transaction.atomic():
        case.call_and_validate(headers=admin_headers, checks=CHECKS)
        transaction.set_rollback(True)
