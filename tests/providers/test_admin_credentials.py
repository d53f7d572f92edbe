"""Saving a provider in the admin asks it for its models with the key (GET /models)."""

from __future__ import annotations

import pytest

from apps.providers.models import Provider
from tests.bots.test_admin_bots import closed_port_url, errors
from tests.factories import make_provider

ADD_URL = "/admin/providers/provider/add/"


def provider_form(**fields) -> dict[str, str]:
    return {
        "name": "OpenAI",
        "base_url": "",
        "api_key": "",
        "enabled": "on",
        "request_timeout": "60",
        "max_retries": "2",
        "extra_headers": "",
        "cooldown_after_failures": "3",
        "cooldown_seconds": "60",
        "save_anyway": "False",
        **fields,
    }


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def test_a_provider_is_saved_once_it_lists_its_models_with_the_key(admin_client, fake_openai):
    fake_openai.api_keys = {"sk-good-key-1234"}

    response = admin_client.post(
        ADD_URL, provider_form(base_url=fake_openai.base_url, api_key="sk-good-key-1234")
    )

    assert response.status_code == 302, errors(response.content.decode())
    assert Provider.objects.get().api_key == "sk-good-key-1234"
    [request] = fake_openai.model_list_requests
    assert request["authorization"] == "Bearer sk-good-key-1234"


def test_a_refused_key_is_a_form_error_without_save_anyway(admin_client, fake_openai):
    fake_openai.api_keys = {"sk-good-key-1234"}

    page = admin_client.post(
        ADD_URL, provider_form(base_url=fake_openai.base_url, api_key="sk-wrong-key-9999")
    ).content.decode()

    assert "The provider refused the API key (HTTP 401): Incorrect API key provided." in errors(
        page
    )
    assert "sk-wrong-key-9999" not in page
    assert 'type="checkbox" name="save_anyway"' not in page
    assert not Provider.objects.exists()


def test_an_unreachable_provider_may_be_saved_anyway(admin_client, transactional_db):
    form = provider_form(base_url=closed_port_url() + "/v1", api_key="sk-any-key-1234")

    page = admin_client.post(ADD_URL, form).content.decode()

    assert "The provider could not be reached to check the key (APIConnectionError" in errors(page)
    assert 'type="checkbox" name="save_anyway"' in page
    assert not Provider.objects.exists()

    assert admin_client.post(ADD_URL, {**form, "save_anyway": "on"}).status_code == 302
    assert Provider.objects.get().base_url == form["base_url"]


def test_a_base_url_without_models_says_what_to_check(admin_client, fake_openai):
    # The fake serves /v1/...: without /v1 nothing is found.
    page = admin_client.post(
        ADD_URL, provider_form(base_url=fake_openai.url, api_key="sk-any-key-1234")
    ).content.decode()

    assert f"GET {fake_openai.url}/models answered HTTP 404" in errors(page)
    assert "it usually ends in /v1" in errors(page)
    assert 'type="checkbox" name="save_anyway"' in page


def test_editing_other_settings_does_not_call_the_provider(admin_client, transactional_db):
    provider = make_provider(base_url=closed_port_url() + "/v1", api_key="sk-stored-key-1")

    response = admin_client.post(
        f"/admin/providers/provider/{provider.pk}/change/",
        provider_form(name="Renamed", base_url=provider.base_url, request_timeout="30"),
    )

    assert response.status_code == 302, errors(response.content.decode())
    provider.refresh_from_db()
    assert (provider.name, provider.request_timeout) == ("Renamed", 30)
    assert provider.api_key == "sk-stored-key-1"  # an empty key field keeps the key
