"""Routing rules' validation (RE2 regular expressions), the API with model permissions and
audit, and the admin's "Which rule answers this?" page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.core.roles import roles_sync
from apps.routing.models import RoutingRule
from apps.routing.services import routing_rule_create
from tests.factories import make_profile, make_provider, make_web_bot


@pytest.fixture
def operator(db, django_user_model):
    roles_sync()
    user = django_user_model.objects.create_user("op", is_staff=True)
    user.groups.add(Group.objects.get(name="Operator"))
    return user


def api_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_a_catastrophic_pattern_is_safe_and_unsupported_ones_are_refused(operator):
    api = api_for(operator)

    # Exponential for a backtracking engine; RE2 runs it in linear time.
    accepted = api.post(
        "/api/v1/routing-rules/",
        {"name": "nested", "pattern": "(a+)+$", "action": "ignore"},
        format="json",
    )
    backreference = api.post(
        "/api/v1/routing-rules/",
        {"name": "backref", "pattern": r"(a)\1", "action": "ignore"},
        format="json",
    )
    lookahead = api.post(
        "/api/v1/routing-rules/",
        {"name": "look", "pattern": r"a(?=b)", "action": "ignore"},
        format="json",
    )

    assert accepted.status_code == 201, accepted.content
    assert backreference.status_code == 400 and "pattern" in backreference.json()
    assert lookahead.status_code == 400 and "pattern" in lookahead.json()
    assert list(RoutingRule.objects.values_list("name", flat=True)) == ["nested"]
    from apps.routing.engine import decide
    from apps.routing.rules import RoutingInput
    from apps.routing.selectors import ruleset_load

    bot = make_web_bot(profile=make_profile(provider=make_provider(base_url="http://x/v1")))
    item = RoutingInput(
        bot_id=str(bot.pk), platform="web", chat_type="private", chat_id="c", user_id="u",
        text="a" * 100_000 + "!", now=timezone.now(),
    )  # fmt: skip
    assert decide(bot=bot, item=item, ruleset=ruleset_load()).rule_id is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"action": "skill", "skill": "weather"}, "skill"),  # not an installed skill
        ({"action": "skill"}, "skill"),
        ({"action": "reply"}, "reply_template"),
        ({"action": "reply", "reply_template": "hi {user.__class__}"}, "reply_template"),
        ({"action": "reply", "reply_template": "hi {user_name:>99999999}"}, "reply_template"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"active_from": "09:00"}, "active_until"),
        ({"command": "/no spaces"}, "command"),
        ({"weekdays": [0]}, "weekdays"),
    ],
)
def test_rules_that_cannot_work_are_refused(operator, fields, field):
    response = api_for(operator).post(
        "/api/v1/routing-rules/", {"name": "bad", **fields}, format="json"
    )

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not RoutingRule.objects.exists()


def test_operator_creates_and_changes_a_rule_audited(operator):
    bot = make_web_bot(profile=make_profile(provider=make_provider(base_url="http://x/v1")))
    api = api_for(operator)

    created = api.post(
        "/api/v1/routing-rules/",
        {"name": "orders", "keywords": ["订单"], "bots": [str(bot.pk)], "action": "reply",
         "reply_template": "Hi {user_name}"},
        format="json",
    )  # fmt: skip
    rule_id = created.json()["id"]
    changed = api.patch(f"/api/v1/routing-rules/{rule_id}/", {"bots": []}, format="json")

    assert created.status_code == 201 and changed.status_code == 200
    assert changed.json()["bots"] == []
    actions = sorted(AuditEvent.objects.values_list("action", flat=True))
    assert actions == ["routingrule.bots", "routingrule.bots", "routingrule.create"]
    removed = AuditEvent.objects.filter(action="routingrule.bots").order_by("id").last()
    assert removed.changes == {"bots": {"from": [str(bot)], "to": []}}


def test_reviewer_may_not_read_rules(db, django_user_model):
    roles_sync()
    reviewer = django_user_model.objects.create_user("rev", is_staff=True)
    reviewer.groups.add(Group.objects.get(name="Reviewer"))
    routing_rule_create(name="x", action="ignore")

    assert api_for(reviewer).get("/api/v1/routing-rules/").status_code == 403


def test_explain_page_names_the_rule_and_why_earlier_ones_missed(client, operator):
    bot = make_web_bot(profile=make_profile(provider=make_provider(base_url="http://x/v1")))
    routing_rule_create(name="telegram only", priority=1, platform="telegram", action="ignore")
    routing_rule_create(name="vip", priority=2, keywords=["vip"], action="ignore")
    routing_rule_create(
        name="orders", priority=3, keywords=["订单"], action="reply", reply_template="找客服"
    )
    routing_rule_create(name="after", priority=4, action="ignore")
    client.force_login(operator)

    page = client.get(
        "/admin/routing/routingrule/explain/",
        {"bot": str(bot.pk), "chat_type": "private", "text": "我的订单"},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert page.status_code == 200
    result = page.context["result"]
    assert result["decision"].rule_name == "orders"
    assert result["decision"].reply_text == "找客服"
    assert [(row["name"], str(row["why"])) for row in result["skipped"]] == [
        ("telegram only", "it is only for Telegram"),
        ("vip", "its keywords are not in the text"),
    ]
    chinese = client.get(
        "/admin/routing/routingrule/explain/",
        {"bot": str(bot.pk), "chat_type": "private", "text": "hello"},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert chinese.status_code == 200
    assert chinese.context["result"]["decision"].rule_name == "after"
    assert "哪条规则" in chinese.content.decode()
