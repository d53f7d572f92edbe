"""Write .env with fresh secrets if there is none (used by `make run`)."""

import base64
import os
import secrets
from pathlib import Path

env_file = Path(__file__).resolve().parent.parent / ".env"
if env_file.exists():
    print(f".env exists, keeping it ({env_file})")
else:
    field_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    env_file.write_text(
        "# Written by `make run` on first start. Every variable is described in .env.example.\n"
        "DEBUG=true\n"
        f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
        f"FIELD_ENCRYPTION_KEY={field_key}\n"
    )
    env_file.chmod(0o600)
    print(f"Wrote {env_file} with a fresh SECRET_KEY and FIELD_ENCRYPTION_KEY")
