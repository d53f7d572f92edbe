"""Takeover through the management API: same services, same permission."""

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.conversations.choices import Author, MessageStatus
from apps.conversations.models import Conversation
from tests.fakes.server import wait_for


def _api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_operator_takes_over_replies_and_hands_back(worker, operator, web_bot):
    conversation = Conversation.objects.create(bot=web_bot, chat_id="v1", chat_type="private")
    api = _api(operator)
    base = f"/api/v1/conversations/{conversation.pk}"

    refused = api.post(f"{base}/reply/", {"text": "too early"}, format="json")
    assert refused.status_code == 409

    taken = api.post(f"{base}/take-over/")
    assert taken.status_code == 200
    assert taken.json()["state"] == "taken_over" and taken.json()["handled_by"] == "operator"

    reply = api.post(f"{base}/reply/", {"text": "Staff here."}, format="json")
    assert reply.status_code == 202
    assert reply.json()["author"] == Author.STAFF
    message = conversation.messages.get(pk=reply.json()["id"])
    wait_for(lambda: conversation.messages.filter(pk=message.pk, status="delivered").exists())

    back = api.post(f"{base}/hand-back/")
    assert back.status_code == 200 and back.json()["state"] == "ai"


def test_viewers_may_not_take_over_through_the_api(viewer, web_bot):
    conversation = Conversation.objects.create(bot=web_bot, chat_id="v1", chat_type="private")
    api = _api(viewer)
    base = f"/api/v1/conversations/{conversation.pk}"

    assert api.post(f"{base}/take-over/").status_code == 403
    assert api.post(f"{base}/reply/", {"text": "hi"}, format="json").status_code == 403
    conversation.refresh_from_db()
    assert conversation.handled_by is None
    assert not conversation.messages.filter(status=MessageStatus.ANSWERED).exists()
