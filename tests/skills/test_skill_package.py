"""A skill from an installed package: the example package in examples/skill-package is
found through its `assistant.skills` entry point, validated by its own schema and run by
a routing rule through the real pipeline.

The test "installs" it the way an installer leaves it for importlib.metadata: a dist-info
directory (METADATA, and entry_points.txt written from the package's own pyproject.toml)
on sys.path next to the package's source. That is the real discovery path, without a pip
or uv run (slow, and needing a build backend) in every test session.
"""

from __future__ import annotations

import logging
import sys
import tomllib
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.conversations.choices import Direction, MessageStatus
from apps.conversations.models import Message
from apps.core.roles import roles_sync
from apps.routing.services import routing_rule_create
from apps.skills.registry import skill_registry, skills_discover
from apps.skills.services import skill_instance_create
from tests.factories import make_web_bot
from tests.fakes.server import wait_for
from tests.telegram_updates import post_update, private_text_update

PACKAGE = Path(__file__).resolve().parents[2] / "examples" / "skill-package"
FAQ = {
    "entries": [
        {"keywords": ["opening hours", "营业时间"], "answer": "周一至周五 9:00–18:00 营业。"},
        {"keywords": ["refund"], "answer": "Refunds take 3–5 working days."},
    ]
}


@pytest.fixture
def installed(tmp_path):
    """The example package as if installed, plus a broken entry point beside it."""
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]
    points = project["entry-points"]["assistant.skills"]
    dist_info = tmp_path / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines = [f"{name} = {target}" for name, target in points.items()]
    lines.append("broken = assistant_skill_example:NoSuchSkill")
    (dist_info / "entry_points.txt").write_text("[assistant.skills]\n" + "\n".join(lines) + "\n")
    sys.path[:0] = [str(tmp_path), str(PACKAGE / "src")]
    skill_registry.cache_clear()
    yield points
    sys.path.remove(str(tmp_path))
    sys.path.remove(str(PACKAGE / "src"))
    sys.modules.pop("assistant_skill_example", None)
    skill_registry.cache_clear()


def test_the_package_skill_is_found_and_a_broken_entry_point_left_out(installed, caplog):
    with caplog.at_level(logging.ERROR, logger="apps.skills.registry"):
        found = skills_discover()

    assert set(installed) == {"faq_lookup"}
    assert found["faq_lookup"].label == "FAQ lookup"
    assert {"help_menu", "http_action"} <= set(found)  # the built-ins are still there
    assert "broken" not in found and "NoSuchSkill" in caplog.text


def test_without_the_package_there_is_no_such_skill():
    skill_registry.cache_clear()
    assert "faq_lookup" not in skill_registry()


def test_the_api_validates_with_the_package_schema(installed, db, django_user_model):
    roles_sync()
    user = django_user_model.objects.create_user("op", is_staff=True)
    user.groups.add(Group.objects.get(name="Operator"))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    bot = make_web_bot(profile=None)

    refused = api.post(
        "/api/v1/skills/",
        {"bot": str(bot.pk), "name": "FAQ", "skill": "faq_lookup", "config": {"entries": []}},
        format="json",
    )
    created = api.post(
        "/api/v1/skills/",
        {"bot": str(bot.pk), "name": "FAQ", "skill": "faq_lookup", "config": FAQ},
        format="json",
    )

    assert refused.status_code == 400 and "entries" in str(refused.json()["config"])
    assert created.status_code == 201, created.content


def test_a_rule_runs_the_package_skill(
    installed, client, worker, telegram_bot, fake_telegram, fake_openai
):
    faq = skill_instance_create(bot=telegram_bot, name="FAQ", skill="faq_lookup", config=FAQ)
    routing_rule_create(name="faq", pattern="(?i)hours|营业", action="skill", skill_instance=faq)

    post_update(client, telegram_bot, private_text_update("你们的营业时间是？"))

    answer = wait_for(
        lambda: Message.objects.filter(
            direction=Direction.OUT, status=MessageStatus.DELIVERED
        ).first(),
        timeout=60,
    )
    assert answer.text == "周一至周五 9:00–18:00 营业。"
    assert answer.attempts[0]["skill"] == "faq_lookup" and answer.attempts[0]["entry"] == 0
    assert fake_openai.requests == []
