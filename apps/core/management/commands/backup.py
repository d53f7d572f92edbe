"""`manage.py backup <archive>`: configuration and conversations to one .tar.gz file."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.core.backup import BackupError, backup_create


class Command(BaseCommand):
    help = gettext_lazy(  # type: ignore[assignment] # shown in the user's language
        "Write configuration (providers, profiles, bots, flood limits, users, groups) and "
        "conversations (messages, feedback, attachments' metadata, unprocessed events, the "
        "audit log) to one archive. Secrets stay encrypted; FIELD_ENCRYPTION_KEY is not in it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "archive",
            nargs="?",
            help=gettext_lazy(
                "The file to write (.tar.gz). Default: assistant-backup-<date and time>.tar.gz "
                "in the current directory."
            ),
        )

    def handle(self, *args, archive=None, **options):
        path = Path(archive or f"assistant-backup-{timezone.now():%Y%m%d-%H%M%S}.tar.gz")
        if path.exists():
            raise CommandError(_("%(path)s exists; choose another name.") % {"path": path})
        try:
            manifest = backup_create(path=path)
        except BackupError as error:
            raise CommandError(str(error)) from error
        for label, count in manifest["counts"].items():
            self.stdout.write(_("  %(model)s: %(count)s") % {"model": label, "count": count})
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "Wrote %(path)s. Secrets in it are encrypted: restoring it needs this "
                    "installation's FIELD_ENCRYPTION_KEY, which the archive does not hold."
                )
                % {"path": path}
            )
        )
