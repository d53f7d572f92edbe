"""Backing up configuration and conversations to one archive, and restoring it.

The archive is a .tar.gz holding `manifest.json` (format and app version, when, the
database's migration state, the rows per model) and one JSON-lines file per model. Rows
are read and written in chunks, so a table of millions of messages never sits in memory.

Encrypted columns (`EncryptedTextField`) are copied as the ciphertext the database holds:
they are read through a CAST, which skips the field's decryption, and written back as
plain text values, which skip its encryption. The key (FIELD_ENCRYPTION_KEY) is never in
the archive; a restore checks it can decrypt before it writes anything.

What is left out, and why, is `NOT_BACKED_UP`; a model in neither list fails a test.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import io
import json
import os
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist
from django.core.management.color import no_style
from django.core.management.sql import emit_post_migrate_signal
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit.services import audit_record
from apps.core.config import config_changed
from apps.core.fields import EncryptedTextField, decrypt, encrypt
from apps.core.health import version

FORMAT = "assistant-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNK_SIZE = 2000
KEY_CHECK_TEXT = "assistant backup key check"

# In loading order (foreign keys point backwards, except within a model; the restore runs
# in one transaction with the constraints checked at its end, so the order is for humans).
CONFIGURATION_MODELS = [
    "auth.group",
    "auth.user",
    "providers.provider",
    "providers.modelprofile",
    "bots.bot",
    "bots.pairingrequest",
    "guard.floodlimits",
    "skills.skillinstance",
    "routing.routingrule",
    "routing.variant",
    "routing.release",
    "routing.releasestep",
]
CONVERSATION_MODELS = [
    "conversations.conversation",
    "conversations.message",
    "conversations.messageattachment",
    "conversations.feedback",
    "bots.unprocessedevent",
    "audit.auditevent",
]
BACKED_UP = CONFIGURATION_MODELS + CONVERSATION_MODELS
# Restored by natural key (merged with the rows `migrate` creates), not by primary key.
BY_NATURAL_KEY = {"auth.group"}
NOT_BACKED_UP = {
    "auth.permission": "created by migrate; referred to by natural key",
    "contenttypes.contenttype": "created by migrate",
    "sessions.session": "logins; users sign in again",
    "admin.logentry": "the admin's own history; the audit log is the record",
    "authtoken.token": "API tokens are stored in plain text; create new ones",
    "authtoken.tokenproxy": "the admin's view of API tokens",
    "axes.accessattempt": "login failures and lockouts; they expire",
    "axes.accesslog": "login records; the audit log keeps sign-ins",
    "axes.accessfailurelog": "login failures; they expire",
    "axes.accessattemptexpiration": "when lockouts expire",
}


class BackupError(Exception):
    """An archive that cannot be written or restored; the message says why, translated."""


@dataclass(frozen=True)
class RestoreResult:
    counts: dict[str, int]
    migrated: bool  # the empty database was first migrated to the archive's state
    migrations_pending: bool  # the code has newer migrations: run `migrate` next


def backed_up_models() -> list[type[models.Model]]:
    return [apps.get_model(label) for label in BACKED_UP]


def migration_state(*, using: str = DEFAULT_DB_ALIAS) -> dict[str, list[str]]:
    """The migrations applied to a database, per app (empty for a database never migrated)."""
    recorder = MigrationRecorder(connections[using])
    if not recorder.has_table():
        return {}
    state: dict[str, list[str]] = {}
    for app_label, name in sorted(recorder.applied_migrations()):
        state.setdefault(app_label, []).append(name)
    return state


# Writing an archive.


def _encode(value: Any) -> Any:
    """A column's Python value as JSON (decoded again by the field's to_python)."""
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, memoryview | bytes):
        return base64.b64encode(bytes(value)).decode()
    return value


def _plain_columns(model: type[models.Model]) -> dict[str, Any]:
    """The expressions to select: encrypted columns cast to text, so they stay encrypted."""
    columns: dict[str, Any] = {}
    for field in model._meta.concrete_fields:
        if isinstance(field, EncryptedTextField):
            columns[field.attname] = Cast(field.attname, output_field=models.TextField())
        else:
            columns[field.attname] = models.F(field.attname)
    return columns


def _natural_keys(
    model: type[models.Model], pks: list[Any], using: str
) -> dict[Any, dict[str, list]]:
    """Many-to-many links of these rows, as the related rows' natural keys."""
    links: dict[Any, dict[str, list]] = {
        pk: {field.name: [] for field in model._meta.many_to_many} for pk in pks
    }
    for field in model._meta.many_to_many:
        through = cast(type[models.Model], field.remote_field.through)
        source = field.m2m_field_name()
        target = field.m2m_reverse_field_name()
        rows = through._default_manager.using(using).filter(**{f"{source}__in": pks})
        rows = rows.select_related(target)
        for row in rows.order_by(f"{source}_id", f"{target}_id"):
            related = getattr(row, target)
            # By natural key where the model has one (users, groups, permissions, which
            # `migrate` and the roles create anew), else by primary key (restored as is).
            key = (
                list(related.natural_key())
                if hasattr(related, "natural_key")
                else {"pk": str(related.pk)}
            )
            links[getattr(row, f"{source}_id")][field.name].append(key)
    return links


def _rows(model: type[models.Model], using: str) -> Iterator[dict[str, Any]]:
    """Every row of `model` as a JSON-ready dict, read CHUNK_SIZE rows at a time."""
    columns = _plain_columns(model)
    names = list(columns)
    queryset = model._base_manager.using(using).order_by("pk").values_list(*columns.values())
    pk_index = names.index(model._meta.pk.attname)
    with_links = bool(model._meta.many_to_many)
    chunk: list[tuple] = []

    def flush() -> Iterator[dict[str, Any]]:
        links = _natural_keys(model, [row[pk_index] for row in chunk], using) if with_links else {}
        for row in chunk:
            record = {name: _encode(value) for name, value in zip(names, row, strict=True)}
            record.update(links.get(row[pk_index], {}))
            yield record
        chunk.clear()

    for row in queryset.iterator(chunk_size=CHUNK_SIZE):
        chunk.append(row)
        if len(chunk) >= CHUNK_SIZE:
            yield from flush()
    yield from flush()


def _snapshot_begin(using: str) -> None:
    # One consistent view of every table: a message is never in the archive without its
    # conversation. PostgreSQL's default (read committed) gives each query its own view.
    connection = connections[using]
    # Only in the outermost block (nothing ran in it yet); nested, the caller's view holds.
    outermost = connection.in_atomic_block and not connection.savepoint_ids
    if connection.vendor == "postgresql" and outermost:
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")


def backup_create(*, path: Path) -> dict[str, Any]:
    """Write configuration and conversations to a .tar.gz archive at `path`; the manifest."""
    using = DEFAULT_DB_ALIAS  # the audit log is written there too
    path = Path(path)
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="assistant-backup-") as workdir:
        files: list[tuple[Path, str]] = []
        with transaction.atomic(using=using):
            _snapshot_begin(using)
            for label in BACKED_UP:
                model = apps.get_model(label)
                name = f"data/{label}.jsonl"
                file_path = Path(workdir) / f"{label}.jsonl"
                count = 0
                with file_path.open("w", encoding="utf-8") as file:
                    for record in _rows(model, using):
                        file.write(json.dumps(record, ensure_ascii=False, sort_keys=True))
                        file.write("\n")
                        count += 1
                counts[label] = count
                files.append((file_path, name))
            state = migration_state(using=using)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "app_version": version(),
            "created_at": timezone.now().isoformat(),
            "database": connections[using].vendor,
            "migrations": state,
            "models": [{"label": label, "file": f"data/{label}.jsonl"} for label in BACKED_UP],
            "counts": counts,
            # Proves at restore time, before any row is written, that the key matches. It
            # is ciphertext, like the secrets: without the key it says nothing.
            "key_check": encrypt(KEY_CHECK_TEXT),
            "not_included": sorted(NOT_BACKED_UP),
        }
        partial = path.with_name(path.name + ".partial")
        try:
            # Readable by its owner only: it holds password hashes and every conversation.
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with (
                os.fdopen(descriptor, "wb") as raw,
                tarfile.open(fileobj=raw, mode="w:gz") as archive,
            ):
                body = json.dumps(manifest, indent=2, sort_keys=True).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size = len(body)
                info.mtime = int(timezone.now().timestamp())
                archive.addfile(info, io.BytesIO(body))
                for file_path, name in files:
                    archive.add(file_path, arcname=name, recursive=False)
            partial.replace(path)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise BackupError(
                _("Could not write the archive %(path)s: %(error)s")
                % {"path": path, "error": error}
            ) from error
    with transaction.atomic(using=using):
        audit_record(action="backup.create", changes={"archive": path.name, "counts": counts})
    return manifest


# Reading an archive.


def _open(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:gz")
    except (OSError, tarfile.TarError) as error:
        raise BackupError(
            _("%(path)s is not a readable backup archive: %(error)s")
            % {"path": path, "error": error}
        ) from error


def backup_manifest_read(*, path: Path) -> dict[str, Any]:
    """The manifest of an archive, checked for its format."""
    with _open(Path(path)) as archive:
        try:
            member = archive.extractfile(MANIFEST)
            manifest = json.load(member) if member else None
        except (KeyError, ValueError, tarfile.TarError) as error:
            raise BackupError(_("%(path)s holds no backup manifest.") % {"path": path}) from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(_("%(path)s is not an archive of this platform.") % {"path": path})
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            _("The archive's format version is %(found)s; this version reads %(known)s.")
            % {"found": manifest.get("format_version"), "known": FORMAT_VERSION}
        )
    return manifest


def _key_check(manifest: dict[str, Any]) -> None:
    try:
        decrypt(manifest.get("key_check", ""))
    except (ImproperlyConfigured, InvalidToken) as error:
        raise BackupError(
            _(
                "The archive's secrets were encrypted with another FIELD_ENCRYPTION_KEY. "
                "Set the key of the installation that made the archive (the archive never "
                "holds it), or list it after this one to rotate: FIELD_ENCRYPTION_KEY=new,old."
            )
        ) from error


def _state_differences(archive: dict[str, list[str]], database: dict[str, list[str]]) -> str:
    lines = []
    for app_label in sorted(archive):
        missing = sorted(set(archive[app_label]) - set(database.get(app_label, [])))
        extra = sorted(set(database.get(app_label, [])) - set(archive[app_label]))
        if missing:
            lines.append(
                _("%(app)s: the archive has %(names)s, the database not")
                % {"app": app_label, "names": ", ".join(missing)}
            )
        if extra:
            lines.append(
                _("%(app)s: the database has %(names)s, the archive not")
                % {"app": app_label, "names": ", ".join(extra)}
            )
    return "; ".join(lines)


def _migrate_to(state: dict[str, list[str]], using: str) -> None:
    """Migrate a database that was never migrated to exactly the archive's state."""
    connection = connections[using]
    loader = MigrationLoader(connection)
    unknown = [
        f"{app_label}.{name}"
        for app_label, names in state.items()
        for name in names
        if (app_label, name) not in loader.graph.nodes
    ]
    if unknown:
        raise BackupError(
            _(
                "The archive was made by a newer version of the platform: this code does not "
                "know the migrations %(names)s. Restore it with that version or a later one."
            )
            % {"names": ", ".join(sorted(unknown))}
        )
    targets = []
    for app_label, names in state.items():
        nodes = {(app_label, name) for name in names}
        for node in nodes:
            ancestors = set(loader.graph.forwards_plan(node))
            if nodes <= ancestors:
                targets.append(node)
                break
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    # What `migrate` does after migrating: content types, permissions, the role groups.
    emit_post_migrate_signal(verbosity=0, interactive=False, db=using)


def _not_empty(using: str) -> list[str]:
    return [
        label
        for label in BACKED_UP
        if label not in BY_NATURAL_KEY and apps.get_model(label)._base_manager.using(using).exists()
    ]


def _tables_to_replace() -> list[str]:
    tables = []
    for label in BACKED_UP:
        if label in BY_NATURAL_KEY:
            continue
        model = apps.get_model(label)
        tables.append(model._meta.db_table)
        tables += [field.remote_field.through._meta.db_table for field in model._meta.many_to_many]
    return tables


def _decode(model: type[models.Model], record: dict[str, Any]) -> tuple[models.Model, dict]:
    """A model instance from one archived row (ciphertext kept as it is), and its links."""
    values: dict[str, Any] = {}
    for field in model._meta.concrete_fields:
        if field.attname not in record:
            continue  # a column the archive's version did not have: the default
        value = record[field.attname]
        if isinstance(field, EncryptedTextField):
            if value:
                try:
                    decrypt(value)
                except ImproperlyConfigured as error:
                    raise BackupError(
                        _(
                            "A secret in the archive (%(model)s %(pk)s, %(field)s) cannot be "
                            "decrypted with this FIELD_ENCRYPTION_KEY."
                        )
                        % {"model": model._meta.label, "pk": record.get("id"), "field": field.name}
                    ) from error
            value = models.Value(value or "", output_field=models.TextField())
        elif isinstance(field, models.JSONField):
            pass
        elif value is not None:
            value = field.to_python(value)
        values[field.attname] = value
    links = {field.name: record.get(field.name, []) for field in model._meta.many_to_many}
    return model(**values), links


def _link(instance: models.Model, links: dict[str, list], using: str) -> None:
    for name, keys in links.items():
        related = cast(type[models.Model], instance._meta.get_field(name).related_model)
        manager: Any = related._default_manager.db_manager(using)
        try:
            objects = [
                manager.get(pk=key["pk"])
                if isinstance(key, dict)
                else manager.get_by_natural_key(*key)
                for key in keys
            ]
        except ObjectDoesNotExist as error:
            raise BackupError(
                _("The archive names a %(model)s this database lacks: %(key)s")
                % {"model": related._meta.verbose_name, "key": error}
            ) from error
        getattr(instance, name).set(objects)


def _insert(model: type[models.Model], rows: list[tuple[models.Model, dict]], using: str) -> None:
    objects = [instance for instance, _links in rows]
    fields = model._meta.concrete_fields
    # Bound by the database's limit on parameters per statement (SQLite's is the lowest).
    size = max(
        1, min(connections[using].ops.bulk_batch_size(fields, objects), 60000 // len(fields))
    )
    for start in range(0, len(objects), size):
        # raw=True: values exactly as archived (no auto_now, no pre_save), as loaddata does.
        model._base_manager.using(using)._insert(  # type: ignore[attr-defined] # loaddata's way
            objects[start : start + size], fields=fields, raw=True, using=using
        )
    for instance, links in rows:
        instance._state.adding = False
        instance._state.db = using
        if any(links.values()):
            _link(instance, links, using)


def _load(archive: tarfile.TarFile, manifest: dict[str, Any], using: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in manifest["models"]:
        label = entry["label"]
        try:
            model = apps.get_model(label)
            member = archive.extractfile(entry["file"])
            if member is None:
                raise KeyError(entry["file"])
        except (LookupError, KeyError) as error:
            raise BackupError(
                _("The archive's %(model)s cannot be read: %(error)s")
                % {"model": label, "error": error}
            ) from error
        count = 0
        pending: list[tuple[models.Model, dict]] = []
        for line in io.TextIOWrapper(member, encoding="utf-8"):
            record = json.loads(line)
            count += 1
            if label in BY_NATURAL_KEY:
                _merge_by_natural_key(model, record, using)
                continue
            pending.append(_decode(model, record))
            if len(pending) >= CHUNK_SIZE:
                _insert(model, pending, using)
                pending = []
        if pending:
            _insert(model, pending, using)
        if count != manifest["counts"].get(label, count):
            raise BackupError(
                _(
                    "The archive is damaged: %(model)s has %(found)s rows where its manifest "
                    "counts %(count)s."
                )
                % {"model": label, "found": count, "count": manifest["counts"][label]}
            )
        counts[label] = count
    return counts


def _merge_by_natural_key(model: type[models.Model], record: dict[str, Any], using: str) -> None:
    # Groups: the role groups exist after migrate; match by name, never by id.
    instance, _created = model._base_manager.using(using).get_or_create(name=record["name"])
    links = {field.name: record.get(field.name, []) for field in model._meta.many_to_many}
    _link(instance, links, using)


def backup_restore(*, path: Path, replace: bool = False) -> RestoreResult:
    """Load an archive into an empty database (`replace`: delete what is there first).

    A database never migrated is first migrated to the archive's migration state; a
    migrated one must be at exactly that state. The whole load is one transaction.
    """
    using = DEFAULT_DB_ALIAS  # the audit log is written there too
    path = Path(path)
    manifest = backup_manifest_read(path=path)
    _key_check(manifest)
    archived_state: dict[str, list[str]] = manifest["migrations"]
    migrated = False
    if not migration_state(using=using):
        _migrate_to(archived_state, using)
        migrated = True
    current = migration_state(using=using)
    differences = _state_differences(archived_state, current)
    if differences:
        raise BackupError(
            _(
                "The archive does not fit this database's migrations (%(differences)s). "
                "Restore into an empty database of the version that made the archive "
                "(%(version)s), or into a database never migrated, then run migrate."
            )
            % {"differences": differences, "version": manifest.get("app_version")}
        )
    connection = connections[using]
    with transaction.atomic(using=using):
        if replace:
            with connection.cursor() as cursor:
                for statement in connection.ops.sql_flush(
                    no_style(), _tables_to_replace(), allow_cascade=True
                ):
                    cursor.execute(statement)
        else:
            occupied = _not_empty(using)
            if occupied:
                raise BackupError(
                    _(
                        "The database is not empty (%(models)s have rows). Restore into an "
                        "empty database, or pass --replace to delete what is there first."
                    )
                    % {"models": ", ".join(occupied)}
                )
        with _open(path) as archive:
            counts = _load(archive, manifest, using)
        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), backed_up_models()):
                cursor.execute(statement)
        connection.check_constraints(
            table_names=[apps.get_model(label)._meta.db_table for label in BACKED_UP]
        )
        audit_record(
            action="backup.restore",
            changes={
                "archive": path.name,
                "created_at": manifest.get("created_at"),
                "app_version": manifest.get("app_version"),
                "replace": replace,
                "counts": counts,
            },
        )
        config_changed()
    executor = MigrationExecutor(connection)
    pending = bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    return RestoreResult(counts=counts, migrated=migrated, migrations_pending=pending)
