"""Every kind of message a user can send is understood or answered with a clear notice,
never dropped in silence (issue 10).

Telegram messages are built with python-telegram-bot's own classes (the Bot API's
Message, Sticker, Video, Location, Venue, Contact, Poll objects:
https://core.telegram.org/bots/api#message). Feishu contents follow "Receive message
content" (https://open.feishu.cn/document/server-docs/im-v1/message-content-description/
message_content): location {"name", "longitude", "latitude"}, share_chat {"chat_id"},
sticker {"file_key"}, merge_forward {"content"}, post elements with tag "code".
"""

from __future__ import annotations

import pytest
from telegram import (
    Audio,
    Contact,
    Location,
    Sticker,
    Venue,
    Video,
    VideoNote,
)

from apps.conversations.choices import Author, Direction, MessageStatus
from apps.conversations.models import Message
from apps.conversations.services.ingest import unsupported_notice
from tests import feishu_events
from tests.feishu_events import VERIFICATION_TOKEN, message_event, post_event
from tests.telegram_updates import message, post_update, update_of

pytestmark = pytest.mark.django_db

fake_feishu = feishu_events.fake_feishu
feishu_bot = feishu_events.feishu_bot
plain_feishu_bot = feishu_events.plain_feishu_bot


CODE_ELEMENT = {"tag": "code", "text": "ls -la"}


def sticker() -> Sticker:
    return Sticker("st-1", "st-u1", 512, 512, False, False, Sticker.REGULAR, emoji="😀")


def video() -> Video:
    return Video("vid-1", "vid-u1", 640, 360, 12)


def the_message() -> Message:
    return Message.objects.get(direction=Direction.IN)


def notices() -> list[str]:
    return list(
        Message.objects.filter(direction=Direction.OUT, author=Author.SYSTEM).values_list(
            "text", flat=True
        )
    )


@pytest.mark.parametrize(
    ("media", "kind", "stored"),
    [
        ({"sticker": sticker()}, "sticker", "[sticker 😀]"),
        ({"audio": Audio("au-1", "au-u1", 180, title="Song")}, "audio", "[audio]"),
    ],
    ids=["sticker", "music"],
)
def test_content_the_bot_cannot_use_is_kept_and_answered_with_a_notice(
    client, telegram_bot, media, kind, stored
):
    response = post_update(client, telegram_bot, update_of(message(**media)))

    assert response.status_code == 200 and response.json()["stored"] == 1
    kept = the_message()
    assert kept.text == stored and kept.status == MessageStatus.ANSWERED
    assert notices() == [unsupported_notice(kind)]


@pytest.mark.parametrize(
    ("media", "text"),
    [
        ({"location": Location(longitude=116.39, latitude=39.91)}, "📍 (39.91, 116.39)"),
        (
            {
                "venue": Venue(
                    Location(longitude=121.5, latitude=31.23), "Office", "88 Century Ave"
                ),
                "location": Location(longitude=121.5, latitude=31.23),
            },
            "📍 Office, 88 Century Ave (31.23, 121.5)",
        ),
        ({"contact": Contact("+8613800000000", "Li", "Lei")}, "👤 Li Lei, +8613800000000"),
    ],
    ids=["location", "venue", "contact"],
)
def test_places_contacts_and_polls_reach_the_model_as_text(client, telegram_bot, media, text):
    response = post_update(client, telegram_bot, update_of(message(**media)))

    assert response.status_code == 200 and response.json()["stored"] == 1
    kept = the_message()
    assert kept.text == text and kept.status == MessageStatus.RECEIVED  # a turn answers it
    assert notices() == []


def test_a_poll_reaches_the_model_as_text(client, telegram_bot):
    # As the Bot API sends it (https://core.telegram.org/bots/api#poll), from a server
    # older than Bot API 9.6: options without persistent_id.
    update = update_of(message("placeholder"))
    del update["message"]["text"]
    update["message"]["poll"] = {
        "id": "p1",
        "question": "Lunch?",
        "options": [{"text": "noodles", "voter_count": 0}, {"text": "rice", "voter_count": 0}],
        "total_voter_count": 0,
        "is_closed": False,
        "is_anonymous": True,
        "type": "regular",
        "allows_multiple_answers": False,
    }

    assert post_update(client, telegram_bot, update).json()["stored"] == 1

    assert the_message().text == "📊 Lunch? — noodles / rice"


def test_a_caption_is_answered_and_the_model_told_what_it_was_not_shown(client, telegram_bot):
    music = Audio("au-1", "au-u1", 180, title="Song")
    post_update(client, telegram_bot, update_of(message("what is this?", audio=music)))

    kept = the_message()
    assert kept.text.startswith("what is this?\n") and "audio" in kept.text.splitlines()[1]
    assert kept.status == MessageStatus.RECEIVED and notices() == []


@pytest.mark.parametrize(
    "media",
    [{"video": video()}, {"video_note": VideoNote("vn-1", "vn-u1", 240, 9)}],
    ids=["video", "video-note"],
)
def test_videos_are_kept_as_attachments_for_a_turn(client, telegram_bot, media):
    # A turn answers them from their key frames (tests/conversations/test_video.py).
    post_update(client, telegram_bot, update_of(message(**media)))

    kept = the_message()
    assert kept.status == MessageStatus.RECEIVED and notices() == []
    assert [a.kind for a in kept.attachments.all()] == ["video"]


@pytest.mark.parametrize(
    ("message_type", "content", "text", "notice_kind"),
    [
        (
            "location",
            {"name": "Feishu HQ", "longitude": "116.3", "latitude": "40.0"},
            "📍 Feishu HQ (40.0, 116.3)",
            None,
        ),
        ("share_chat", {"chat_id": "oc_shared"}, "[shared group chat oc_shared]", None),
        ("sticker", {"file_key": "sticker_key"}, "[sticker]", "sticker"),
        (
            "merge_forward",
            {"content": "Merged and Forwarded Message"},
            "[merge forward]",
            "merge_forward",
        ),
        (
            "post",
            {
                "title": "",
                "content": [[{"tag": "text", "text": "run "}, {"tag": "code", "text": "ls -la"}]],
            },
            "run `ls -la`",
            None,
        ),
    ],
    ids=["location", "share-chat", "sticker", "merge-forward", "post-inline-code"],
)
def test_feishu_message_kinds_are_understood_or_answered(
    client, plain_feishu_bot, message_type, content, text, notice_kind
):
    event = message_event(token=VERIFICATION_TOKEN, message_type=message_type, content=content)

    assert post_event(client, plain_feishu_bot, event).status_code == 200

    assert the_message().text == text
    assert notices() == ([unsupported_notice(notice_kind)] if notice_kind else [])


def test_a_feishu_post_that_ats_the_bot_in_its_content_is_a_mention(client, plain_feishu_bot):
    # Group posts whose @ elements carry the open_id and come without a `mentions` list.
    content = {
        "title": "",
        "content": [
            [
                {"tag": "at", "user_id": feishu_events.BOT_OPEN_ID, "user_name": "Assistant"},
                {"tag": "text", "text": " summarise this thread"},
            ]
        ],
    }
    event = message_event(
        token=VERIFICATION_TOKEN, message_type="post", content=content, chat_type="group"
    )

    assert post_event(client, plain_feishu_bot, event).status_code == 200

    assert the_message().text == "summarise this thread"


def test_a_feishu_group_post_that_ats_someone_else_is_not_answered(client, plain_feishu_bot):
    content = {"content": [[{"tag": "at", "user_id": "ou_someone", "user_name": "Li"}]]}
    event = message_event(
        token=VERIFICATION_TOKEN, message_type="post", content=content, chat_type="group"
    )

    assert post_event(client, plain_feishu_bot, event).status_code == 200

    assert not Message.objects.filter(direction=Direction.IN).exists()


def test_a_feishu_post_keeps_its_files_as_attachments(client, plain_feishu_bot):
    from apps.conversations.models import MessageAttachment

    content = {
        "title": "Report",
        "content": [
            [{"tag": "text", "text": "please read"}],
            [{"tag": "file", "file_key": "file_v3_report", "file_name": "q3.pdf"}],
        ],
    }
    event = message_event(token=VERIFICATION_TOKEN, message_type="post", content=content)

    assert post_event(client, plain_feishu_bot, event).status_code == 200

    message = the_message()
    assert message.text == "Report\nplease read"
    [attachment] = MessageAttachment.objects.filter(message=message)
    assert attachment.platform_file_id == "file_v3_report" and attachment.kind == "file"
