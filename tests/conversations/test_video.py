"""Videos are answered from their key frames and the words of their sound (issue 10).

Telegram sends a video, a video note or an animation as those Bot API objects
(https://core.telegram.org/bots/api#video, #videonote, #animation; built here with
python-telegram-bot's classes) and serves the file through getFile, which bots may
use for files up to 20 MB (https://core.telegram.org/bots/api#getfile). Feishu sends a
video as a `media` message, {"file_key", "image_key", "file_name", "duration"} (Open
Platform, "Receive message content"), fetched through the message-resources API. The
video is
a real MP4 made by ffmpeg for the test (a test pattern and a 440 Hz tone).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess

import pytest
from telegram import Animation, Video, VideoNote

from apps.conversations.choices import AttachmentKind, Author, Direction, MessageStatus
from apps.conversations.models import Message, MessageAttachment
from apps.conversations.services.media import KEY_FRAMES
from tests import feishu_events
from tests.fakes.server import wait_for
from tests.feishu_events import VERIFICATION_TOKEN, message_event, post_event
from tests.telegram_updates import message, post_update, update_of

fake_feishu = feishu_events.fake_feishu
feishu_bot = feishu_events.feishu_bot

CHAT = 4242


@pytest.fixture(scope="module")
def mp4(tmp_path_factory) -> bytes:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        if os.environ.get("CI"):
            pytest.fail("ffmpeg is missing (.ci/run installs it)")
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg)")
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    subprocess.run(  # noqa: S603
        [
            ffmpeg, "-v", "error", "-y",
            "-f", "lavfi", "-i", "testsrc=duration=6:size=320x240:rate=10",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=6",
            "-c:v", "libx264", "-g", "10", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
            str(path),
        ],
        check=True,
    )  # fmt: skip
    return path.read_bytes()


def answers(count: int = 1) -> list[Message]:
    def rows():
        found = list(
            Message.objects.filter(direction=Direction.OUT, status=MessageStatus.DELIVERED)
        )
        return found if len(found) >= count else None

    return wait_for(rows, timeout=60)


def test_a_video_is_shown_to_a_vision_model_as_key_frames_with_its_words(
    client, worker, telegram_bot, profile, fake_telegram, fake_openai, mp4
):
    profile.accepts_images = True
    profile.transcription_model = "whisper-1"
    profile.save()
    fake_openai.transcript = "hello from the sound track"
    fake_telegram.add_file("vid-1", mp4, "videos/file_1.mp4")
    video = Video("vid-1", "vid-u1", 320, 240, 6, mime_type="video/mp4", file_size=len(mp4))

    post_update(client, telegram_bot, update_of(message("what happens here?", video=video)))

    answers()
    [attachment] = MessageAttachment.objects.all()
    assert attachment.kind == AttachmentKind.VIDEO and attachment.error == ""
    [request] = fake_openai.chat_requests()
    parts = request["messages"][-1]["content"]
    assert parts[0] == {
        "type": "text",
        "text": "what happens here?\nhello from the sound track",
    }
    frames = [part["image_url"]["url"] for part in parts[1:]]
    assert len(frames) == KEY_FRAMES and len(set(frames)) == KEY_FRAMES  # spread, not one
    for url in frames:
        assert base64.b64decode(url.removeprefix("data:image/jpeg;base64,"))[:3] == b"\xff\xd8\xff"
    # The sound went to transcription as Ogg audio.
    [transcription] = fake_openai.transcriptions
    assert transcription["model"] == "whisper-1" and transcription["file"][:4] == b"OggS"


def test_a_video_note_to_a_model_that_cannot_see_gets_a_clear_reply(
    client, worker, telegram_bot, fake_telegram, fake_openai, mp4
):
    fake_telegram.add_file("vn-1", mp4, "video_notes/file_2.mp4")
    note = VideoNote("vn-1", "vn-u1", 240, 6, file_size=len(mp4))

    post_update(client, telegram_bot, update_of(message(video_note=note)))

    [reply] = answers()
    assert reply.author == Author.SYSTEM and "can't watch videos" in reply.text
    assert fake_openai.chat_requests() == []
    assert fake_telegram.chat(CHAT)[0].text == reply.text


def test_a_video_over_telegrams_download_limit_is_not_fetched_and_the_user_is_told(
    client, worker, telegram_bot, profile, fake_telegram, fake_openai
):
    profile.accepts_images = True
    profile.save()
    big = Animation("anim-1", "anim-u1", 640, 360, 30, file_size=25 * 1024 * 1024)

    post_update(client, telegram_bot, update_of(message(animation=big)))

    [reply] = answers()
    assert "at most 20 MB" in reply.text
    assert fake_telegram.sent("getFile") == [] and fake_openai.chat_requests() == []
    [attachment] = MessageAttachment.objects.all()
    assert attachment.error.startswith("too large")


def test_a_feishu_video_is_read_like_any_other(
    client, worker, feishu_bot, profile, fake_feishu, fake_openai, mp4
):
    profile.accepts_images = True
    profile.save()
    event = message_event(
        token=VERIFICATION_TOKEN,
        message_type="media",
        content={
            "file_key": "file_v2_video",
            "image_key": "img_v2_cover",
            "file_name": "clip.mp4",
            "duration": 6000,
        },
    )
    message_id = event["event"]["message"]["message_id"]
    fake_feishu.add_resource(message_id, "file_v2_video", mp4, "video/mp4")

    assert post_event(client, feishu_bot, event).status_code == 200

    answers()
    [attachment] = MessageAttachment.objects.all()
    assert (attachment.kind, attachment.file_name) == (AttachmentKind.VIDEO, "clip.mp4")
    [request] = fake_openai.chat_requests()
    images = [p for p in request["messages"][-1]["content"] if p["type"] == "image_url"]
    assert len(images) == KEY_FRAMES
