"""The admin's conversation actions call the same takeover services as the console."""

from apps.audit.models import AuditEvent
from apps.conversations.models import Conversation


def test_operator_takes_over_and_hands_back_from_the_admin(client, operator, web_bot):
    conversation = Conversation.objects.create(bot=web_bot, chat_id="v1", chat_type="private")
    client.force_login(operator)
    url = "/admin/conversations/conversation/"

    response = client.post(url, {"action": "take_over", "_selected_action": [conversation.pk]})

    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.handled_by == operator
    assert AuditEvent.objects.filter(action="conversation.take_over", actor=operator).count() == 1

    client.post(url, {"action": "hand_back", "_selected_action": [conversation.pk]})

    conversation.refresh_from_db()
    assert conversation.handled_by is None
    assert AuditEvent.objects.filter(action="conversation.hand_back", actor=operator).count() == 1


def test_viewers_do_not_get_the_takeover_actions(client, viewer, web_bot):
    conversation = Conversation.objects.create(bot=web_bot, chat_id="v1", chat_type="private")
    client.force_login(viewer)

    page = client.get("/admin/conversations/conversation/")
    assert page.status_code == 200
    assert 'value="take_over"' not in page.content.decode()
    client.post(
        "/admin/conversations/conversation/",
        {"action": "take_over", "_selected_action": [conversation.pk]},
    )
    conversation.refresh_from_db()
    assert conversation.handled_by is None
