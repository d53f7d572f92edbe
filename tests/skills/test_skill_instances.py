"""Skill instances: the registry's built-ins, configurations validated against each skill's
JSON Schema in the API and the admin, secrets encrypted at rest and masked when read,
audited like every configuration change."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.core.roles import roles_sync
from apps.skills.models import SkillInstance
from apps.skills.registry import skill_registry
from tests.factories import make_web_bot

SECRET = "hmac-SECRET-0f9e8d7c"
TICKETS = {
    "url": "https://tickets.example.com/api/tickets",
    "secret": SECRET,
    "body": {"title": "{text}", "reporter": "{user_name}"},
    "reply_template": "工单已创建：#{ticket_id}",
}


@pytest.fixture
def operator(db, django_user_model):
    roles_sync()
    user = django_user_model.objects.create_user("op", is_staff=True)
    user.groups.add(Group.objects.get(name="Operator"))
    return user


@pytest.fixture
def bot(db):
    return make_web_bot(profile=None, name="helpdesk")


def api_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_the_built_in_skills_are_registered():
    assert {"help_menu", "http_action"} <= set(skill_registry())


def test_api_validates_the_configuration_against_the_skill_schema(operator, bot):
    api = api_for(operator)

    no_url = api.post(
        "/api/v1/skills/",
        {
            "bot": str(bot.pk),
            "name": "t",
            "skill": "http_action",
            "config": {"reply_template": "x"},
        },
        format="json",
    )
    bad_timeout = api.post(
        "/api/v1/skills/",
        {
            "bot": str(bot.pk),
            "name": "t",
            "skill": "http_action",
            "config": {**TICKETS, "timeout": 600},
        },
        format="json",
    )
    unknown_skill = api.post(
        "/api/v1/skills/",
        {"bot": str(bot.pk), "name": "t", "skill": "no_such_skill", "config": {}},
        format="json",
    )

    assert no_url.status_code == 400 and "'url' is a required property" in str(no_url.json())
    assert bad_timeout.status_code == 400 and "timeout" in str(bad_timeout.json()["config"])
    assert unknown_skill.status_code == 400 and "skill" in unknown_skill.json()
    assert not SkillInstance.objects.exists()


def test_secrets_are_encrypted_at_rest_masked_when_read_and_kept_when_sent_back(operator, bot):
    api = api_for(operator)

    created = api.post(
        "/api/v1/skills/",
        {"bot": str(bot.pk), "name": "Open a ticket", "skill": "http_action", "config": TICKETS},
        format="json",
    )
    assert created.status_code == 201, created.content
    skill_id = created.json()["id"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT config FROM skills_skillinstance WHERE id = %s", [skill_id])
        (stored,) = cursor.fetchone()
    read = api.get(f"/api/v1/skills/{skill_id}/").json()
    changed = api.patch(
        f"/api/v1/skills/{skill_id}/",
        {"config": {**read["config"], "reply_template": "Ticket #{ticket_id}"}},
        format="json",
    )

    assert SECRET not in stored and "tickets.example.com" not in stored
    assert read["config"]["secret"] == "<set>"
    assert SECRET not in created.content.decode() + changed.content.decode()
    assert changed.status_code == 200, changed.content
    instance = SkillInstance.objects.get(pk=skill_id)
    assert instance.config["secret"] == SECRET  # "<set>" kept the stored value
    assert instance.config["reply_template"] == "Ticket #{ticket_id}"
    events = AuditEvent.objects.filter(target_type="skills.skillinstance").order_by("id")
    assert [event.action for event in events] == ["skillinstance.create", "skillinstance.update"]
    assert events[0].changes["config.secret"] == {"from": None, "to": "<set>"}
    assert events[1].changes == {
        "config.reply_template": {"from": "工单已创建：#{ticket_id}", "to": "Ticket #{ticket_id}"}
    }
    assert all(SECRET not in str(event.changes) for event in events)


def test_admin_refuses_an_invalid_configuration_and_saves_a_valid_one(client, operator, bot):
    client.force_login(operator)
    form = {"bot": str(bot.pk), "name": "Menu", "skill": "help_menu", "enabled": "on"}

    refused = client.post(
        "/admin/skills/skillinstance/add/", {**form, "config": '{"colour": "blue"}'}
    )
    saved = client.post(
        "/admin/skills/skillinstance/add/", {**form, "config": '{"title": "我能做这些："}'}
    )

    assert refused.status_code == 200
    assert "Additional properties are not allowed" in refused.content.decode()
    assert saved.status_code == 302
    instance = SkillInstance.objects.get()
    assert instance.config == {"title": "我能做这些："}
    assert AuditEvent.objects.filter(action="skillinstance.create", target_id=str(instance.pk))


def test_admin_never_shows_a_secret_and_keeps_it_on_save(client, operator, bot):
    from apps.skills.services import skill_instance_create

    instance = skill_instance_create(
        bot=bot, name="Open a ticket", skill="http_action", config=TICKETS
    )
    client.force_login(operator)
    url = f"/admin/skills/skillinstance/{instance.pk}/change/"

    page = client.get(url)
    shown = page.context["adminform"].form.initial["config"]
    response = client.post(
        url,
        {
            "bot": str(bot.pk),
            "name": "Open a ticket",
            "skill": "http_action",
            "config": __import__("json").dumps({**shown, "timeout": 5}),
            "enabled": "on",
        },
    )

    assert SECRET not in page.content.decode()
    assert shown["secret"] == "<set>"
    assert response.status_code == 302
    instance.refresh_from_db()
    assert instance.config["secret"] == SECRET and instance.config["timeout"] == 5
