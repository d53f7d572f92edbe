"""WeCom (企业微信) callbacks as the platform sends them, from its published examples.

Sources (kept with each example below):
- 加解密方案说明 (message encryption), https://developer.work.weixin.qq.com/document/path/90968 :
  the vectors of WeCom's official WXBizMsgCrypt sample (Sample.cs / Sample.py in the
  library linked from that page as “下载地址”): token QDG6eK, EncodingAESKey
  jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C, receive id (corp ID) wx5823bf96d3bd56c7.
- 接收消息与事件 → 消息格式, https://developer.work.weixin.qq.com/document/path/90239 :
  the text, image, voice, video and location message examples.
"""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlencode

import pytest

from apps.bots.platforms.wecom import crypto
from apps.bots.services import bot_create
from tests.fakes.wecom import FakeWeCom

# --- 加解密方案说明: the official sample (https://developer.work.weixin.qq.com/document/path/90968)
SAMPLE_TOKEN = "QDG6eK"
SAMPLE_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SAMPLE_CORP_ID = "wx5823bf96d3bd56c7"
# GET /cgi-bin/wxpush?msg_signature=…&timestamp=1409659589&nonce=263014780&echostr=…
SAMPLE_URL_CHECK = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": (
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
    ),
}
SAMPLE_URL_CHECK_PLAINTEXT = "1616140317555161061"
# POST /cgi-bin/wxpush?msg_signature=477715d1…&timestamp=1409659813&nonce=1372623149
SAMPLE_MESSAGE_QUERY = {
    "msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
    "timestamp": "1409659813",
    "nonce": "1372623149",
}
SAMPLE_MESSAGE_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3Qczc"
    "dCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLj"
    "vd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMn"
    "vw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k"
    "22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2Yoy"
    "yH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
SAMPLE_MESSAGE_BODY = (
    f"<xml><ToUserName><![CDATA[{SAMPLE_CORP_ID}]]></ToUserName>"
    f"<Encrypt><![CDATA[{SAMPLE_MESSAGE_ENCRYPT}]]></Encrypt>"
    "<AgentID><![CDATA[218]]></AgentID></xml>"
).encode()
# What it decrypts to: a text message "hello" from member "mycreate", MsgId 4561255354251345929.

# --- 接收消息与事件 → 消息格式 (https://developer.work.weixin.qq.com/document/path/90239)
TEXT = """<xml>
   <ToUserName><![CDATA[toUser]]></ToUserName>
   <FromUserName><![CDATA[fromUser]]></FromUserName>
   <CreateTime>1348831860</CreateTime>
   <MsgType><![CDATA[text]]></MsgType>
   <Content><![CDATA[this is a test]]></Content>
   <MsgId>1234567890123456</MsgId>
   <AgentID>1</AgentID>
</xml>"""
IMAGE = """<xml>
   <ToUserName><![CDATA[toUser]]></ToUserName>
   <FromUserName><![CDATA[fromUser]]></FromUserName>
   <CreateTime>1348831860</CreateTime>
   <MsgType><![CDATA[image]]></MsgType>
   <PicUrl><![CDATA[this is a url]]></PicUrl>
   <MediaId><![CDATA[media_id]]></MediaId>
   <MsgId>1234567890123456</MsgId>
   <AgentID>1</AgentID>
</xml>"""
VOICE = """<xml>
   <ToUserName><![CDATA[toUser]]></ToUserName>
   <FromUserName><![CDATA[fromUser]]></FromUserName>
   <CreateTime>1357290913</CreateTime>
   <MsgType><![CDATA[voice]]></MsgType>
   <MediaId><![CDATA[media_id]]></MediaId>
   <Format><![CDATA[Format]]></Format>
   <MsgId>1234567890123456</MsgId>
   <AgentID>1</AgentID>
</xml>"""
VIDEO = """<xml>
   <ToUserName><![CDATA[toUser]]></ToUserName>
   <FromUserName><![CDATA[fromUser]]></FromUserName>
   <CreateTime>1357290913</CreateTime>
   <MsgType><![CDATA[video]]></MsgType>
   <MediaId><![CDATA[media_id]]></MediaId>
   <ThumbMediaId><![CDATA[thumb_media_id]]></ThumbMediaId>
   <MsgId>1234567890123456</MsgId>
   <AgentID>1</AgentID>
</xml>"""
LOCATION = """<xml>
   <ToUserName><![CDATA[toUser]]></ToUserName>
   <FromUserName><![CDATA[FromUser]]></FromUserName>
   <CreateTime>1351776360</CreateTime>
   <MsgType><![CDATA[location]]></MsgType>
   <Location_X>23.134</Location_X>
   <Location_Y>113.358</Location_Y>
   <Scale>20</Scale>
   <Label><![CDATA[位置信息]]></Label>
   <MsgId>1234567890123456</MsgId>
   <AgentID>1</AgentID>
</xml>"""
# Not in the message-format page (no published example): a file as this package reads it.
FILE = """<xml>
   <ToUserName><![CDATA[toUser]]></ToUserName>
   <FromUserName><![CDATA[fromUser]]></FromUserName>
   <CreateTime>1357290913</CreateTime>
   <MsgType><![CDATA[file]]></MsgType>
   <MediaId><![CDATA[file_media_id]]></MediaId>
   <FileName><![CDATA[report.pdf]]></FileName>
   <MsgId>1234567890123457</MsgId>
   <AgentID>1</AgentID>
</xml>"""


def signed_query(*, token: str, encrypted: str, timestamp: str | None = None) -> dict[str, str]:
    """The query WeCom puts on a callback: a fresh timestamp and nonce, and their signature."""
    timestamp = timestamp or str(int(time.time()))
    nonce = uuid.uuid4().hex[:10]
    signature = crypto.signature(token=token, timestamp=timestamp, nonce=nonce, encrypted=encrypted)
    return {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}


def encrypted_body(bot, plain: str) -> tuple[bytes, str]:
    """`plain` encrypted for the bot as WeCom sends it: (the XML body, the ciphertext)."""
    config = bot.config
    encrypted = crypto.encrypt(
        encoding_aes_key=config["encoding_aes_key"],
        message=plain.encode(),
        receive_id=config["corp_id"],
    )
    body = (
        f"<xml><ToUserName><![CDATA[{config['corp_id']}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[1]]></AgentID></xml>"
    )
    return body.encode(), encrypted


def post_callback(client, bot, body: bytes, query: dict[str, str]):
    return client.post(
        f"/api/webhooks/wecom/{bot.pk}/?{urlencode(query)}", data=body, content_type="text/xml"
    )


def post_message(client, bot, plain: str):
    """Post one plaintext message to the bot's webhook, encrypted and signed as WeCom does."""
    body, encrypted = encrypted_body(bot, plain)
    query = signed_query(token=bot.config["token"], encrypted=encrypted)
    return post_callback(client, bot, body, query)


@pytest.fixture
def fake_wecom():
    fake = FakeWeCom().start()
    yield fake
    fake.stop()


@pytest.fixture
def wecom_bot(profile, fake_wecom):
    """A WeCom bot with the official sample's token and key, talking to the fake."""
    return bot_create(
        name=f"wecom-{uuid.uuid4().hex[:6]}",
        platform="wecom",
        profile=profile,
        api_base_url=fake_wecom.url,
        config={
            "corp_id": fake_wecom.corp_id,
            "agent_id": "1000002",
            "secret": fake_wecom.secret,
            "token": SAMPLE_TOKEN,
            "encoding_aes_key": SAMPLE_AES_KEY,
        },
    )


@pytest.fixture
def sample_wecom_bot(wecom_bot, fake_wecom):
    """The bot (and the fake) with the official sample's corp ID: its ciphertext is for it."""
    fake_wecom.corp_id = SAMPLE_CORP_ID
    wecom_bot.config = {**wecom_bot.config, "corp_id": SAMPLE_CORP_ID}
    wecom_bot.save(update_fields=["config"])
    return wecom_bot
