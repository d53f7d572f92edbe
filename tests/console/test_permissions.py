"""Who may see the console and who may take over: pages and websockets."""

import asyncio

import pytest

from apps.conversations.models import Conversation
from tests.console.conftest import staff_socket

PAGES = [
    "/console/",
    "/console/history/",
    "/console/dashboard/",
    "/console/history/export.csv",
    "/console/history/export.jsonl",
]


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_users_are_sent_to_the_admin_login(client, transactional_db, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("path", PAGES)
def test_staff_without_view_permission_get_403(client, bare_staff, path):
    client.force_login(bare_staff)
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", PAGES)
def test_viewers_see_every_page(client, viewer, path):
    client.force_login(viewer)
    assert client.get(path).status_code == 200


def _conversation(bot) -> Conversation:
    return Conversation.objects.create(bot=bot, chat_id="4242", chat_type="private")


@pytest.mark.parametrize("action", ["take-over", "hand-back", "reply"])
def test_viewers_may_not_take_over_or_reply(client, viewer, web_bot, action):
    conversation = _conversation(web_bot)
    client.force_login(viewer)
    response = client.post(f"/console/conversations/{conversation.pk}/{action}/", {"text": "hi"})
    assert response.status_code == 403
    conversation.refresh_from_db()
    assert conversation.handled_by is None
    assert conversation.messages.count() == 0


def test_viewer_page_has_no_takeover_controls_and_operator_page_has(
    client, viewer, operator, web_bot
):
    conversation = _conversation(web_bot)
    client.force_login(viewer)
    page = client.get(f"/console/conversations/{conversation.pk}/").content.decode()
    assert 'id="take-over"' not in page
    client.force_login(operator)
    page = client.get(f"/console/conversations/{conversation.pk}/").content.decode()
    assert 'id="take-over"' in page


def test_take_over_needs_post(client, operator, web_bot):
    conversation = _conversation(web_bot)
    client.force_login(operator)
    assert client.get(f"/console/conversations/{conversation.pk}/take-over/").status_code == 405


@pytest.mark.parametrize("who", ["anonymous", "bare"])
@pytest.mark.parametrize("path", ["/ws/console/", "/ws/console/conversations/{id}/"])
def test_sockets_refuse_users_without_view_permission(client, bare_staff, web_bot, who, path):
    conversation = _conversation(web_bot)
    user = bare_staff if who == "bare" else None
    communicator = staff_socket(client, user, path.format(id=conversation.pk))

    async def scenario():
        refused = await communicator.connect()
        # The consumer ends as it would on a server, not cancelled mid-way by asyncio.run
        # (a database call cut short there keeps its pooled connection).
        await communicator.disconnect()
        return refused

    connected, code = asyncio.run(scenario())
    assert not connected
    assert code == 4403


def test_sockets_accept_viewers(client, viewer, web_bot):
    conversation = _conversation(web_bot)
    communicator = staff_socket(client, viewer, f"/ws/console/conversations/{conversation.pk}/")

    async def scenario():
        connected, _ = await communicator.connect()
        first = await communicator.receive_json_from()
        await communicator.disconnect()
        return connected, first

    connected, first = asyncio.run(scenario())
    assert connected
    assert first["type"] == "snapshot"
    assert first["conversation"]["id"] == conversation.pk
    assert first["conversation"]["state"] == "ai"
    assert first["messages"] == []


def test_socket_for_a_missing_conversation_closes_4404(client, viewer):
    communicator = staff_socket(client, viewer, "/ws/console/conversations/999999/")

    async def scenario():
        connected, _ = await communicator.connect()
        closed = await communicator.receive_output()
        await communicator.disconnect()  # the consumer ends, not cancelled by asyncio.run
        return connected, closed

    connected, closed = asyncio.run(scenario())
    assert connected
    assert closed == {"type": "websocket.close", "code": 4404}
