"""Feishu message events name their sender by open_id only; staff should see who wrote.

Once a turn's answer is out, the platform asks Feishu's Contact API for the names it lacks
(lark-oapi against the loopback fake, whose answers follow
https://open.feishu.cn/document/server-docs/contact-v3/user/get) and keeps them in the
conversation's participants, which the console and the history show.
"""

from __future__ import annotations

from apps.conversations.models import Conversation
from apps.conversations.services import participant_name_learn
from apps.conversations.services.chats import sender_names_ask
from tests import feishu_events
from tests.fakes.server import wait_for
from tests.feishu_events import USER_OPEN_ID, VERIFICATION_TOKEN, message_event, post_event

fake_feishu = feishu_events.fake_feishu
feishu_bot = feishu_events.feishu_bot


def conversation() -> Conversation | None:
    return Conversation.objects.first()


def test_the_name_of_a_feishu_sender_is_learned_after_the_answer(
    client, worker, feishu_bot, fake_feishu
):
    fake_feishu.users[USER_OPEN_ID] = {"name": "张三", "en_name": "Zhang San"}

    response = post_event(client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text="你好"))

    assert response.status_code == 200
    assert wait_for(lambda: conversation().participants.get(USER_OPEN_ID)) == "张三"
    [asked] = fake_feishu.calls_of("user")
    assert asked.path_params["id"] == USER_OPEN_ID
    assert asked.query["user_id_type"] == ["open_id"]
    # The answer went first: the card was created before Feishu was asked the name.
    operations = [call.operation for call in fake_feishu.calls if call.operation != "token"]
    assert operations.index("reply") < operations.index("user")

    post_event(client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text="还在吗"))

    wait_for(lambda: len(fake_feishu.cards()) >= 2)
    # The next message's own (nameless) sender field does not erase the name, and a known
    # name is not asked for again.
    assert conversation().participants[USER_OPEN_ID] == "张三"
    assert participant_name_learn(conversation_id=conversation().pk, sender_id=USER_OPEN_ID) == (
        "张三"
    )
    assert len(fake_feishu.calls_of("user")) == 1


def test_a_refused_name_is_not_asked_for_again(client, worker, feishu_bot, fake_feishu, caplog):
    # No user in the fake's contact range: Feishu answers 41050 "no user authority".
    post_event(client, feishu_bot, message_event(token=VERIFICATION_TOKEN, text="one"))

    wait_for(lambda: "did not name user" in caplog.text)
    assert len(fake_feishu.cards()) == 1  # answered all the same
    assert conversation().participants == {USER_OPEN_ID: ""}
    assert participant_name_learn(conversation_id=conversation().pk, sender_id=USER_OPEN_ID) == ""
    assert len(fake_feishu.calls_of("user")) == 1  # the refusal is remembered for the bot
    # ...so later turns do not even queue a lookup.
    asked = sender_names_ask(
        conversation_id=conversation().pk, bot_id=feishu_bot.pk, senders=[USER_OPEN_ID]
    )
    assert asked == 0
