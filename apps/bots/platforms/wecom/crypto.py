"""WeCom's callback cryptography (加解密方案说明): SHA1 signatures and AES-256-CBC.

msg_signature = sha1 of the sorted, joined token, timestamp, nonce and ciphertext.
The ciphertext is base64(AES-256-CBC(random 16 bytes + 4-byte big-endian length + msg
+ receive id)), keyed with base64(EncodingAESKey + "="), IV = the key's first 16 bytes,
PKCS#7 padding to 32 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from apps.bots.platforms.base import WebhookRejected

BLOCK = 32  # WeCom pads to 32 bytes, not AES's 16


def signature(*, token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """The msg_signature WeCom puts on a callback."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()  # noqa: S324 - WeCom's scheme


def signature_check(*, token: str, timestamp: str, nonce: str, encrypted: str, given: str) -> None:
    """Raise WebhookRejected (403) unless `given` is the callback's signature."""
    expected = signature(token=token, timestamp=timestamp, nonce=nonce, encrypted=encrypted)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise WebhookRejected("bad msg_signature", status=403)


def _key(encoding_aes_key: str) -> bytes:
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as error:
        raise WebhookRejected("the EncodingAESKey is not valid base64", status=403) from error
    if len(key) != 32:
        raise WebhookRejected("the EncodingAESKey is not 43 characters", status=403)
    return key


def decrypt(*, encoding_aes_key: str, encrypted: str, receive_id: str) -> bytes:
    """The plaintext of `encrypted`; WebhookRejected (400) when it is not ours or malformed."""
    key = _key(encoding_aes_key)
    try:
        data = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError) as error:
        raise WebhookRejected("the ciphertext is not base64", status=400) from error
    if not data or len(data) % 16:
        raise WebhookRejected("the ciphertext is not whole AES blocks", status=400)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    padding = plain[-1]
    if not 1 <= padding <= BLOCK or plain[-padding:] != bytes([padding]) * padding:
        raise WebhookRejected("cannot decrypt: bad padding (wrong EncodingAESKey?)", status=400)
    plain = plain[:-padding]
    if len(plain) < 20:
        raise WebhookRejected("cannot decrypt: too short", status=400)
    (length,) = struct.unpack(">I", plain[16:20])
    message, tail = plain[20 : 20 + length], plain[20 + length :]
    if len(message) != length or tail.decode("utf-8", "replace") != receive_id:
        raise WebhookRejected("the message is for another corp ID", status=403)
    return message


def encrypt(*, encoding_aes_key: str, message: bytes, receive_id: str, random: bytes | None = None):
    """`message` encrypted as WeCom does (tests and passive replies use it)."""
    key = _key(encoding_aes_key)
    plain = (random or os.urandom(16)) + struct.pack(">I", len(message)) + message
    plain += receive_id.encode()
    padding = BLOCK - len(plain) % BLOCK
    plain += bytes([padding]) * padding
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()
