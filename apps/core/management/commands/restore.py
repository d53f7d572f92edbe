"""`manage.py restore <archive>`: load a `manage.py backup` archive into an empty database."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.core.backup import BackupError, backup_restore


class Command(BaseCommand):
    help = gettext_lazy(  # type: ignore[assignment] # shown in the user's language
        "Load an archive written by `manage.py backup` into an empty database (one never "
        "migrated is first migrated to the archive's state). Needs the FIELD_ENCRYPTION_KEY "
        "the archive's secrets were encrypted with."
    )

    def add_arguments(self, parser):
        parser.add_argument("archive", help=gettext_lazy("The archive to load."))
        parser.add_argument(
            "--replace",
            action="store_true",
            help=gettext_lazy(
                "Delete the configuration and conversations this database holds (users, "
                "their API tokens and admin history too) before loading. Without it a "
                "database that is not empty is refused."
            ),
        )

    def handle(self, *args, archive, replace=False, **options):
        path = Path(archive)
        if not path.is_file():
            raise CommandError(_("No archive at %(path)s.") % {"path": path})
        try:
            result = backup_restore(path=path, replace=replace)
        except BackupError as error:
            raise CommandError(str(error)) from error
        if result.migrated:
            self.stdout.write(_("Migrated the empty database to the archive's state."))
        for label, count in result.counts.items():
            self.stdout.write(_("  %(model)s: %(count)s") % {"model": label, "count": count})
        self.stdout.write(self.style.SUCCESS(_("Restored %(path)s.") % {"path": path}))
        if result.migrations_pending:
            self.stdout.write(
                self.style.WARNING(
                    _("This version has newer migrations: run `manage.py migrate` next.")
                )
            )
