"""`manage.py backup` and `manage.py restore`: a round trip into a fresh database.

The source is the test database, filled through the services and factories; the archive
is restored by `manage.py restore` in a subprocess into a fresh SQLite file or a fresh
PostgreSQL database, and both are compared with Django's own `dumpdata` (which decrypts
secrets, so equal dumps also mean the secrets decrypt) and column by column for the
ciphertext of every secret.
"""

from __future__ import annotations

import decimal
import gzip
import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection

from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.bots.choices import Platform
from apps.bots.platforms.base import InboundAttachment, InboundMessage
from apps.bots.services import bot_create, unprocessed_event_record
from apps.conversations.choices import Author, Direction, MessageStatus, Rating
from apps.conversations.models import Message
from apps.conversations.services.actions import feedback_record
from apps.conversations.services.console import conversation_take_over
from apps.conversations.services.ingest import message_ingest
from apps.core.backup import BACKED_UP, CHUNK_SIZE, NOT_BACKED_UP
from apps.core.roles import OPERATOR
from apps.guard.selectors import flood_limits_get
from apps.routing.services import release_create, routing_rule_create, variant_create
from apps.skills.services import skill_instance_create
from tests.factories import make_profile, make_provider, make_telegram_bot, make_web_bot

ROOT = Path(settings.BASE_DIR)
SECRETS = {
    "provider api key": "sk-provider-PLAINTEXT-0001",
    "provider header": "Bearer header-PLAINTEXT-0002",
    "telegram token": "123456:TELEGRAM-PLAINTEXT-0003",
    "feishu app secret": "feishu-app-PLAINTEXT-0004",
    "feishu verification token": "feishu-verify-PLAINTEXT-0005",
    "feishu encrypt key": "feishu-encrypt-PLAINTEXT-0006",
    "skill secret": "skill-hmac-PLAINTEXT-0007",
}
# Columns that hold ciphertext: (table, column).
ENCRYPTED_COLUMNS = [
    ("providers_provider", "api_key"),
    ("providers_provider", "extra_headers"),
    ("bots_bot", "config"),  # every platform's settings and secrets, one JSON, encrypted
    ("skills_skillinstance", "config"),
]


def _populate(django_user_model) -> dict:
    """Configuration and conversations of every kind the archive holds."""
    operator = django_user_model.objects.create_user(
        "operator", password="operator-password-1", is_staff=True
    )
    operator.groups.add(Group.objects.get(name=OPERATOR))
    reviewer = django_user_model.objects.create_user("reviewer", password="reviewer-password-1")
    reviewer.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    provider = make_provider(
        base_url="http://127.0.0.1:9/v1",
        api_key=SECRETS["provider api key"],
        extra_headers={"Authorization": SECRETS["provider header"]},
    )
    first = make_profile(provider=provider, name="首选 profile", price_input_per_1k="0.001500")
    second = make_profile(provider=provider, name="fallback profile")
    # A foreign key to a later row of the same table.
    first.fallback = second
    first.save()
    telegram = make_telegram_bot(
        profile=first, api_base_url="http://127.0.0.1:9", telegram_token=SECRETS["telegram token"]
    )
    bot_create(
        name="飞书助手",
        platform=Platform.FEISHU,
        profile=second,
        config={
            "app_id": "cli_test",
            "app_secret": SECRETS["feishu app secret"],
            "verification_token": SECRETS["feishu verification token"],
            "encrypt_key": SECRETS["feishu encrypt key"],
        },
    )
    web = make_web_bot(profile=first)
    limits = flood_limits_get()
    limits.user_messages_per_minute = 0  # off: the volume below is not rate limited
    limits.save()
    # Routing and skills: a rule for two bots (a many-to-many by primary key), a skill
    # with a secret, A/B variants (one a skill) and a running release with its first
    # history line.
    skill = skill_instance_create(
        bot=web,
        name="Tickets",
        skill="http_action",
        config={
            "url": "http://127.0.0.1:9/tickets",
            "secret": SECRETS["skill secret"],
            "reply_template": "#{id}",
        },
    )
    rule = routing_rule_create(
        bots=[web, telegram], name="订单", priority=10, keywords=["订单"], profile=second
    )
    routing_rule_create(
        bots=[web], name="工单", priority=20, keywords=["工单"], action="skill",
        skill_instance=skill,
    )  # fmt: skip
    control = variant_create(rule=rule, name="control", weight=100, profile=first)
    candidate = variant_create(rule=rule, name="candidate", weight=0, profile=second)
    release_create(name="candidate", variant=candidate, control=control, steps=[5, 100])
    # A variant that is a configured skill (weight 0: it answers nothing here).
    variant_create(bot=web, name="skill desk", weight=0, skill_instance=skill)

    asked = message_ingest(
        bot=web,
        inbound=InboundMessage(
            external_id="evt-1",
            chat_id="visitor-1",
            chat_type="private",
            sender_id="visitor-1",
            sender_name="访客",
            text="你好，请看这张图",
            attachments=(
                InboundAttachment(
                    kind="image", platform_file_id="file-1", mime_type="image/png", size=1234
                ),
            ),
        ),
    )
    answer = Message.objects.create(
        conversation=asked.conversation,
        bot=web,
        direction=Direction.OUT,
        author=Author.ASSISTANT,
        text="您好！",
        reply_to=asked,
        status=MessageStatus.DELIVERED,
        profile=first,
        prompt_tokens=12,
        completion_tokens=3,
        cost=decimal.Decimal("0.000123"),
        attempts=[{"profile": first.pk, "result": "ok"}],
    )
    feedback_record(message=answer, rating=Rating.HELPFUL, platform_user_id="visitor-1")
    conversation_take_over(conversation_id=asked.conversation_id, actor=operator)
    unprocessed_event_record(bot=telegram, body=b'{"update_id": 1, "\xff": "\x00"}', reason="why")
    audit_record(action="bot.update", actor=operator, target=web, changes={"name": "x"})
    # More messages than one chunk, so reading and writing go past a chunk boundary.
    conversation = asked.conversation
    Message.objects.bulk_create(
        Message(
            conversation=conversation,
            bot=web,
            direction=Direction.IN,
            author=Author.USER,
            sender_id="visitor-1",
            text=f"message {number}",
            external_id=f"bulk-{number}",
            status=MessageStatus.ANSWERED,
        )
        for number in range(CHUNK_SIZE + 5)
    )
    return {"web": web, "telegram": telegram}


def _dump(*, environment: dict | None = None) -> dict:
    """Every archived model's rows, as `dumpdata` sees them (secrets decrypted)."""
    arguments = ["dumpdata", *BACKED_UP, "--natural-foreign", "--natural-primary"]
    if environment is None:
        out = io.StringIO()
        call_command(*arguments, stdout=out)
        text = out.getvalue()
    else:
        text = _manage(*arguments, environment=environment).stdout
    rows = {}
    for row in json.loads(text):
        if row["model"] == "audit.auditevent" and row["fields"]["action"].startswith("backup."):
            continue  # the backup's and the restore's own records
        key = (row["model"], row.get("pk", row["fields"].get("name")))
        rows[key] = row
    return rows


def _manage(*arguments, environment: dict, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"manage.py {arguments[0]} failed:\n{result.stderr}")
    return result


def _environment(database_url: str, **extra: str) -> dict:
    return {**os.environ, "DATABASE_URL": database_url, **extra}


def _source_ciphertexts() -> dict:
    values = {}
    with connection.cursor() as cursor:
        for table, column in ENCRYPTED_COLUMNS:
            cursor.execute(f"SELECT id, {column} FROM {table}")  # noqa: S608
            for pk, value in cursor.fetchall():
                values[(table, column, str(pk))] = value
    return values


def _backup(tmp_path: Path) -> Path:
    archive = tmp_path / "backup.tar.gz"
    call_command("backup", str(archive), stdout=io.StringIO())
    return archive


def _postgres_server_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


@pytest.fixture
def sqlite_target(tmp_path):
    path = tmp_path / "restored.sqlite3"
    return path, _environment(f"sqlite:///{path}")


@pytest.fixture
def postgres_target():
    """A fresh PostgreSQL database on the tests' server, named after theirs, then dropped."""
    import psycopg

    url = _postgres_server_url()
    if url is None:
        pytest.skip("DATABASE_URL names no PostgreSQL server (CI runs this with one)")
    parts = urlsplit(url)
    name = f"{parts.path.strip('/')}_restore_{uuid.uuid4().hex[:8]}"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    target_url = urlunsplit(parts._replace(path=f"/{name}"))
    try:
        yield target_url, _environment(target_url)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_every_model_is_backed_up_or_left_out_with_a_reason():
    labels = {model._meta.label_lower for model in apps.get_models()}
    assert labels == set(BACKED_UP) | set(NOT_BACKED_UP)
    assert not set(BACKED_UP) & set(NOT_BACKED_UP)


def test_round_trip_into_a_never_migrated_sqlite_file(
    db, django_user_model, tmp_path, sqlite_target
):
    _populate(django_user_model)
    archive = _backup(tmp_path)
    assert AuditEvent.objects.filter(action="backup.create").exists()
    path, environment = sqlite_target

    result = _manage("restore", str(archive), environment=environment)

    assert "Migrated the empty database" in result.stdout
    source = _dump()
    restored = _dump(environment=environment)
    assert restored == source
    assert len([key for key in source if key[0] == "conversations.message"]) > CHUNK_SIZE
    # dumpdata decrypted the restored secrets with the same key.
    dumped = json.dumps(list(restored.values()), ensure_ascii=False)
    for secret in SECRETS.values():
        assert secret in dumped
    # The ciphertext itself came back unchanged (not decrypted and encrypted again).
    target = sqlite3.connect(path)
    try:
        for (table, column, pk), value in _source_ciphertexts().items():
            row = target.execute(
                f"SELECT {column} FROM {table} WHERE CAST(id AS TEXT) = ?",  # noqa: S608
                (pk.replace("-", ""),) if table == "bots_bot" else (pk,),
            ).fetchone()
            assert row == (value,), (table, column)
        restores = target.execute(
            "SELECT COUNT(*) FROM audit_auditevent WHERE action = 'backup.restore'"
        ).fetchone()
        assert restores == (1,)
    finally:
        target.close()


def test_round_trip_into_a_migrated_postgresql_database(
    db, django_user_model, tmp_path, postgres_target
):
    import psycopg

    _populate(django_user_model)
    archive = _backup(tmp_path)
    url, environment = postgres_target
    _manage("migrate", "-v0", environment=environment)

    result = _manage("restore", str(archive), environment=environment)

    assert "Migrated the empty database" not in result.stdout
    assert _dump(environment=environment) == _dump()
    with psycopg.connect(url) as target:
        for (table, column, pk), value in _source_ciphertexts().items():
            row = target.execute(
                f"SELECT {column} FROM {table} WHERE id::text = %s",  # noqa: S608
                (pk,),
            ).fetchone()
            assert row == (value,), (table, column)
        # The sequences moved past the restored ids: new rows do not collide.
        next_id = target.execute("SELECT nextval('conversations_message_id_seq')").fetchone()[0]
        assert next_id > Message.objects.order_by("-id").values_list("id", flat=True)[0]


def test_the_archive_holds_no_secret_in_plain_text_and_not_the_key(db, django_user_model, tmp_path):
    _populate(django_user_model)
    archive = _backup(tmp_path)

    content = gzip.decompress(archive.read_bytes())
    for name, secret in SECRETS.items():
        assert secret.encode() not in content, name
    for key in settings.FIELD_ENCRYPTION_KEYS:
        assert key.encode() not in content
    # The secrets are there, as ciphertext.
    with tarfile.open(archive) as opened:
        providers = opened.extractfile("data/providers.provider.jsonl").read().decode()
        manifest = json.load(opened.extractfile("manifest.json"))
    assert json.loads(providers.splitlines()[0])["api_key"].startswith("fernet:")
    assert manifest["counts"]["conversations.message"] == Message.objects.count()
    assert manifest["migrations"]["bots"]
    assert oct(archive.stat().st_mode & 0o777) == oct(0o600)


def test_restore_with_another_key_fails_clearly_and_writes_nothing(
    db, django_user_model, tmp_path, sqlite_target
):
    _populate(django_user_model)
    archive = _backup(tmp_path)
    path, environment = sqlite_target
    environment["FIELD_ENCRYPTION_KEY"] = Fernet.generate_key().decode()

    result = _manage("restore", str(archive), environment=environment, check=False)

    assert result.returncode == 1
    assert "encrypted with another FIELD_ENCRYPTION_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert (
        not path.exists()
        or not sqlite3.connect(path)
        .execute("SELECT name FROM sqlite_master WHERE name = 'providers_provider'")
        .fetchall()
    )


def test_restore_refuses_a_database_that_is_not_empty_unless_replacing(
    db, django_user_model, tmp_path, sqlite_target
):
    _populate(django_user_model)
    archive = _backup(tmp_path)
    path, environment = sqlite_target
    _manage("restore", str(archive), environment=environment)

    refused = _manage("restore", str(archive), environment=environment, check=False)
    assert refused.returncode == 1
    assert "The database is not empty" in refused.stderr
    assert "--replace" in refused.stderr

    _manage("restore", str(archive), "--replace", environment=environment)
    assert _dump(environment=environment) == _dump()


def test_the_refusal_is_in_chinese_in_a_chinese_installation(
    db, django_user_model, tmp_path, sqlite_target
):
    _populate(django_user_model)
    archive = _backup(tmp_path)
    _path, environment = sqlite_target
    environment["LANGUAGE_CODE"] = "zh-hans"
    environment["FIELD_ENCRYPTION_KEY"] = Fernet.generate_key().decode()

    result = _manage("restore", str(archive), environment=environment, check=False)

    assert result.returncode == 1
    assert "FIELD_ENCRYPTION_KEY" in result.stderr
    assert "密钥" in result.stderr


def _with_migrations(archive: Path, tmp_path: Path, change) -> Path:
    """A copy of `archive` whose manifest's migration state `change` rewrote."""
    changed = tmp_path / "changed.tar.gz"
    with tarfile.open(archive) as source, tarfile.open(changed, "w:gz") as target:
        for member in source.getmembers():
            body = source.extractfile(member).read()
            if member.name == "manifest.json":
                manifest = json.loads(body)
                change(manifest["migrations"])
                body = json.dumps(manifest).encode()
                member.size = len(body)
            target.addfile(member, io.BytesIO(body))
    return changed


def test_restore_refuses_an_archive_from_another_migration_state(
    db, django_user_model, tmp_path, sqlite_target
):
    _populate(django_user_model)
    archive = _backup(tmp_path)
    path, environment = sqlite_target
    newer = _with_migrations(archive, tmp_path, lambda state: state["bots"].append("9999_later"))

    into_blank = _manage("restore", str(newer), environment=environment, check=False)
    assert into_blank.returncode == 1
    assert "newer version" in into_blank.stderr
    assert "bots.9999_later" in into_blank.stderr

    _manage("migrate", "-v0", environment=environment)
    older = _with_migrations(archive, tmp_path, lambda state: state["bots"].pop())
    into_migrated = _manage("restore", str(older), environment=environment, check=False)
    assert into_migrated.returncode == 1
    assert "does not fit this database's migrations" in into_migrated.stderr
    assert "the database has" in into_migrated.stderr
    count = sqlite3.connect(path).execute("SELECT COUNT(*) FROM providers_provider").fetchone()
    assert count == (0,)
