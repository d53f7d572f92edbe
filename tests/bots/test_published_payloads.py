"""Payloads published by Telegram, Feishu and other projects, driven through the webhooks.

Each file in tests/fixtures/<platform>/ holds one payload as its source published it (see
"source" and "notes" in the file, and tests/fixtures/README.md). The tables below say what
each one does here: the text (and attachments) stored for it, the reason it is kept as an
unprocessed event, or nothing at all for kinds the bot deliberately ignores. Every stored
message is then answered on a real worker through the fake platform.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from apps.bots.choices import Platform
from apps.bots.models import UnprocessedEvent
from apps.bots.services import bot_create
from apps.conversations.choices import Author, Direction
from apps.conversations.models import Message
from apps.conversations.services.ingest import unsupported_notice
from tests import feishu_events
from tests.fakes.server import wait_for
from tests.feishu_events import BOT_OPEN_ID, ENCRYPT_KEY, post_event, signed_headers
from tests.telegram_updates import post_body

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

fake_feishu = feishu_events.fake_feishu


@dataclass(frozen=True)
class Outcome:
    """What one published payload does: the answer to the webhook call and what is stored."""

    text: str | None = None  # the stored message's text; None: no message is stored
    attachments: tuple[tuple[str, str], ...] = ()  # (kind, platform file id) of each
    notice: str = ""  # an unsupported kind: answered at once with its notice
    unprocessed: str = ""  # kept as an UnprocessedEvent whose reason contains this
    status: int = 200
    body: dict[str, Any] | None = None  # the exact JSON answer, when it matters


def ignored() -> Outcome:
    """A kind the bot deliberately does not take: acknowledged, nothing stored."""
    return Outcome()


TG_DOC_FILE = "AwADBAADbXXXXXXXXXXXGBdhD2l6_XX"

TELEGRAM: dict[str, Outcome] = {
    # core.telegram.org/bots/webhooks "Testing your bot with updates"
    "docs_text_start_untyped_chat": Outcome(text="/start"),  # no chat.type (pre Bot API 2.0)
    "docs_text_start": Outcome(text="/start"),  # no bot_command entity: taken as text
    "docs_forwarded": Outcome(text="/start"),
    "docs_forwarded_channel": Outcome(text="/start"),
    "docs_reply": Outcome(text="/start"),
    "docs_edited": ignored(),  # edits are ignored unless the bot is set to answer them
    "docs_entities": Outcome(text="Bold and italics"),
    "docs_audio": Outcome(text="[audio]", notice="audio"),
    "docs_voice": Outcome(text="", attachments=(("audio", TG_DOC_FILE),)),
    "docs_document": Outcome(text="", attachments=(("file", TG_DOC_FILE),)),
    "docs_inline_query": ignored(),
    "docs_chosen_inline_result": ignored(),
    "docs_callback_query": ignored(),  # not one of our buttons
    # aiogram 2.x tests/types/dataset.py (Bot API 4.x)
    "aiogram_photo_caption": Outcome(
        text="photo description",
        attachments=(("image", "AgADBAADFak0G88YZAf8OAug7bHyS9x2ZxkABHVfpJywcloRAAGAAQABAg"),),
    ),
    "aiogram_sticker_bot_api_4": Outcome(text="[sticker 🛠]", notice="sticker"),
    "aiogram_video_caption": Outcome(
        text="description", attachments=(("video", "BAADAgpAADdawy_JxS72kRvV3cortAg"),)
    ),
    "aiogram_video_note": Outcome(text="", attachments=(("video", "AbCdEfGhIjKlMnOpQrStUvWxYz"),)),
    "aiogram_location": Outcome(text="📍 (50.693416, 30.624605)"),
    "aiogram_venue": Outcome(text="📍 Venue Name, Venue Address (50.693416, 30.624605)"),
    "aiogram_contact": Outcome(text="👤 John Smith, 88005553535"),
    "aiogram_dice_without_emoji": Outcome(text="[dice]", notice="dice"),  # Bot API 4.7 dice
    "aiogram_migrate_to_chat_id": ignored(),  # the chat is re-keyed, nothing to answer
    "aiogram_forwarded_from_channel": Outcome(
        text="Forwarded text with entities from public channel"
    ),
    "aiogram_game": Outcome(text="[game]", notice="game"),
    "aiogram_channel_post": ignored(),
    # pyTelegramBotAPI tests/test_types.py
    "ptba_poll_bot_api_4_8": Outcome(text="📊 Test poll 1 — Answer 1 / Answer 2"),
    "ptba_dice_darts": Outcome(text="[dice]", notice="dice"),
    "ptba_sticker_supergroup": ignored(),  # a group message not addressed to the bot
    "ptba_text_with_reply_markup": Outcome(text="test"),
    "ptba_chat_member_updated": ignored(),  # my_chat_member
    "ptba_quote_reply": Outcome(text="quote reply"),
    "ptba_forward_custom_emoji": Outcome(text="a" * 76 + "😋😋"),
    "ptba_nested_entities": Outcome(text="This is a bold text with a nested italic and bold text."),
}

FS_FILE = "75235e0c-4f92-430a-a99b-8446610223cg"

FEISHU: dict[str, Outcome] = {
    "url_verification": Outcome(body={"challenge": "ajls384kdjx98XX"}),
    "encrypted_hello_world": Outcome(status=400),  # decrypts to "hello world": not an event
    "schema_1_0_file_message": Outcome(unprocessed="not a schema 2.0 event"),
    "receive_v1_group_text_at_someone": ignored(),  # @Tom in a group, not the bot
    "receive_v1_group_text_at_bot": Outcome(text="hello"),
    "content_text": Outcome(text="@Tom 文本消息"),
    "content_post": Outcome(
        text="我是一个标题\n第一行 :超链接@Tom\n第二行:文本测试\n:SMILE:\n"
        "func main() int64 {\n    return 0\n}",
        attachments=(
            ("image", "img_47354fbc-a159-40ed-86ab-2ad0f1acb42g"),
            ("image", "img_47354fbc-a159-40ed-86ab-2ad0f1acb42g"),
            ("video", "file_v2_0dcdd7d9-fib0-4432-a519-41d25aca542j"),
        ),
    ),
    "content_image": Outcome(
        text="", attachments=(("image", "img_4adb3cc3-902b-4187-b0f1-842f67fd017g"),)
    ),
    "content_file": Outcome(text="", attachments=(("file", FS_FILE),)),
    "content_folder": Outcome(text="[folder]", notice="folder"),
    "content_audio": Outcome(text="", attachments=(("audio", FS_FILE),)),
    "content_media": Outcome(text="", attachments=(("video", FS_FILE),)),
    "content_sticker": Outcome(text="[sticker]", notice="sticker"),
    "content_interactive": Outcome(text="[interactive]", notice="interactive"),
    "content_hongbao": Outcome(text="[hongbao]", notice="hongbao"),
    "content_share_calendar_event": Outcome(
        text="[share calendar event]", notice="share_calendar_event"
    ),
    "content_share_chat": Outcome(text="[shared group chat oc_0dd200d32fdaxxxxxxxx32f76]"),
    "content_share_user": Outcome(text="[shared contact ou_0dd200d32xxxxx6d2c2ef1ddb32f76]"),
    "content_system": Outcome(text="[system]", notice="system"),
    "content_location": Outcome(text="📍 xx省xx市 (xxx.xxx, xxx.xxx)"),
    "content_video_chat": Outcome(text="[video chat]", notice="video_chat"),
    "content_todo": Outcome(text="[todo]", notice="todo"),
    "content_vote": Outcome(text="[vote]", notice="vote"),
    "content_merge_forward": Outcome(text="[merge forward]", notice="merge_forward"),
}


def fixture(platform: str, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / platform / f"{name}.json").read_text(encoding="utf-8"))


def answered(table: dict[str, Outcome]) -> list[str]:
    return [name for name, outcome in table.items() if outcome.text is not None]


def inbound_messages() -> list[Message]:
    return list(Message.objects.filter(direction=Direction.IN).order_by("id"))


def check_stored(outcome: Outcome) -> None:
    stored = inbound_messages()
    if outcome.text is None:
        assert stored == []
    else:
        [message] = stored
        assert message.text == outcome.text
        assert [
            (attachment.kind, attachment.platform_file_id)
            for attachment in message.attachments.order_by("id")
        ] == list(outcome.attachments)
    notices = list(
        Message.objects.filter(direction=Direction.OUT, author=Author.SYSTEM).values_list(
            "text", flat=True
        )
    )
    assert notices == ([unsupported_notice(outcome.notice)] if outcome.notice else [])
    reasons = list(UnprocessedEvent.objects.values_list("reason", flat=True))
    if outcome.unprocessed:
        [reason] = reasons
        assert outcome.unprocessed in reason
    else:
        assert reasons == []


# Sending them as the platforms do -------------------------------------------------------------


def post_telegram(client, bot, name: str):
    return post_body(client, bot, json.dumps(fixture("telegram", name)["payload"]).encode())


def feishu_bot_for(name: str, *, profile, fake_feishu):
    """A Feishu bot whose Verification Token (and Encrypt Key) are the ones the payload uses."""
    published = fixture("feishu", name)
    payload = published["payload"]
    token = payload.get("token") or payload.get("header", {}).get("token") or "unused-token"
    return bot_create(
        name=f"feishu-{uuid.uuid4().hex[:6]}",
        platform=Platform.FEISHU,
        profile=profile,
        api_base_url=fake_feishu.url,
        config={
            "app_id": fake_feishu.app_id,
            "app_secret": fake_feishu.app_secret,
            "verification_token": token,
            "encrypt_key": published.get("encrypt_key", ENCRYPT_KEY),
        },
        platform_username=BOT_OPEN_ID,
    )


def post_feishu(client, bot, name: str):
    """POST as Feishu does with an Encrypt Key: events encrypted and signed, the URL check
    encrypted and unsigned; a published ciphertext is sent as it is, signed."""
    published = fixture("feishu", name)
    payload = published["payload"]
    if "encrypt" in payload:
        body = json.dumps(payload).encode()
        return post_event(
            client, bot, {}, raw=body, headers=signed_headers(body, bot.config["encrypt_key"])
        )
    if payload.get("type") == "url_verification":
        return post_event(client, bot, payload, headers={})
    return post_event(client, bot, payload)


# The tables cover the folders -----------------------------------------------------------------


@pytest.mark.parametrize(("platform", "table"), [("telegram", TELEGRAM), ("feishu", FEISHU)])
def test_every_published_payload_has_a_source_and_an_expected_outcome(platform, table):
    names = {path.stem for path in (FIXTURES / platform).glob("*.json")}

    assert names == set(table)
    for name in names:
        published = fixture(platform, name)
        assert published["source"].strip() and published["notes"].strip(), name
        assert isinstance(published["payload"], dict), name


# What each one does at the webhook ------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(TELEGRAM))
def test_published_telegram_update(client, telegram_bot, name):
    outcome = TELEGRAM[name]

    response = post_telegram(client, telegram_bot, name)

    assert response.status_code == outcome.status
    assert response.json()["stored"] == (outcome.text is not None)
    check_stored(outcome)


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(FEISHU))
def test_published_feishu_event(client, profile, fake_feishu, name):
    outcome = FEISHU[name]
    bot = feishu_bot_for(name, profile=profile, fake_feishu=fake_feishu)

    response = post_feishu(client, bot, name)

    assert response.status_code == outcome.status
    if outcome.body is not None:
        assert response.json() == outcome.body
    check_stored(outcome)


# ... and the answer that reaches the user --------------------------------------------------


@pytest.mark.parametrize("name", answered(TELEGRAM))
def test_published_telegram_message_is_answered(
    client, worker, telegram_bot, fake_telegram, fake_openai, name
):
    for kind, file_id in TELEGRAM[name].attachments:
        fake_telegram.add_file(file_id, b"published-payload-file", f"{kind}/{file_id}")
    chat_id = fixture("telegram", name)["payload"]["message"]["chat"]["id"]

    assert post_telegram(client, telegram_bot, name).status_code == 200

    shown = wait_for(lambda: fake_telegram.chat(chat_id), timeout=60)
    assert shown[0].text.strip()
    assert [m.chat_id for m in shown] == [chat_id] * len(shown)


@pytest.mark.parametrize("name", answered(FEISHU))
def test_published_feishu_message_is_answered(client, worker, profile, fake_feishu, name):
    bot = feishu_bot_for(name, profile=profile, fake_feishu=fake_feishu)
    message = fixture("feishu", name)["payload"]["event"]["message"]
    for _kind, file_key in FEISHU[name].attachments:
        fake_feishu.add_resource(
            message["message_id"], file_key, b"published-payload-file", "application/octet-stream"
        )

    assert post_feishu(client, bot, name).status_code == 200

    [card] = wait_for(lambda: fake_feishu.cards(), timeout=60)
    assert card.reply_to == message["message_id"]
    assert wait_for(lambda: card.text.strip(" …"), timeout=60)
