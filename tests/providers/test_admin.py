"""The providers admin: health columns from Redis and the "Test this profile" probe."""

from __future__ import annotations

import re

from apps.providers.services import provider_failure_record, provider_success_record
from tests.factories import make_profile, make_provider


def test_test_this_profile_shows_first_token_latency_total_time_and_reply(
    client, staff_user, fake_openai
):
    profile = make_profile(provider=make_provider(base_url=fake_openai.base_url))
    fake_openai.reply = "Yes, I am here."
    client.force_login(staff_user)

    listing = client.get("/admin/providers/modelprofile/")
    url = f"/admin/providers/modelprofile/{profile.pk}/test/"
    assert url in listing.content.decode()
    form = client.get(url)
    assert form.status_code == 200 and fake_openai.requests == []

    page = client.post(url, {"prompt": "ping?"}).content.decode()

    assert fake_openai.requests[0]["messages"][-1] == {"role": "user", "content": "ping?"}
    assert 'id="probe-reply" style="white-space: pre-wrap">Yes, I am here.<' in page
    assert re.search(r'id="first-token">\d+\.\d{3} s<', page)
    assert re.search(r'id="total-time">\d+\.\d{3} s<', page)
    assert "Answered" in page


def test_a_failing_probe_shows_the_error(client, staff_user, fake_openai):
    profile = make_profile(provider=make_provider(base_url=fake_openai.base_url, max_retries=0))
    fake_openai.fail(401)
    client.force_login(staff_user)

    page = client.post(f"/admin/providers/modelprofile/{profile.pk}/test/").content.decode()

    assert "Failed" in page and "HTTP 401" in page
    assert 'id="first-token">—<' in page


def test_probe_needs_staff(client, django_user_model, fake_openai, transactional_db):
    profile = make_profile(provider=make_provider(base_url=fake_openai.base_url))
    response = client.post(f"/admin/providers/modelprofile/{profile.pk}/test/")
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert fake_openai.requests == []


def test_provider_list_shows_health_and_cooldown_can_be_ended(client, staff_user, db):
    healthy = make_provider(base_url="http://127.0.0.1:9/v1", name="healthy")
    failing = make_provider(
        base_url="http://127.0.0.1:9/v1", name="failing", cooldown_after_failures=2
    )
    provider_success_record(provider=healthy)
    provider_failure_record(provider=failing, error="HTTP 503: overloaded")
    provider_failure_record(provider=failing, error="HTTP 503: overloaded again")
    client.force_login(staff_user)

    page = client.get("/admin/providers/provider/").content.decode()

    assert "HTTP 503: overloaded again" in page
    assert re.search(r"cooling down, \d+s left", page)
    assert page.count(">ok<") == 1  # the healthy one

    response = client.post(
        "/admin/providers/provider/",
        {"action": "end_cooldown", "_selected_action": [failing.pk]},
        follow=True,
    )
    assert "Cooldown ended." in response.content.decode()
    assert "cooling down" not in response.content.decode()
