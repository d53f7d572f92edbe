"""The first admin account `make run` creates, and where its password is kept for the banner."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

# Readable by the owner only; the start banner points to it until the operator deletes it.
ADMIN_PASSWORD_FILE = Path(settings.BASE_DIR) / ".admin-password"


def first_admin_create() -> str | None:
    """Create the `admin` superuser when there is none; returns its password (kept in a file)."""
    User = get_user_model()
    if User.objects.filter(is_superuser=True).exists():
        return None
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser("admin", "", password)
    descriptor = os.open(ADMIN_PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(password + "\n")
    return password
