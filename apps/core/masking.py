"""Showing secrets without revealing them."""


def mask_secret(value: str | None) -> str:
    """`sk-abc…wxyz` style: enough to recognise a key, never enough to use it."""
    if not value:
        return ""
    if len(value) <= 8:
        return "•" * len(value)
    return f"{value[:3]}…{value[-4:]}"


def mask_headers(headers: dict | None) -> dict[str, str]:
    """Header names with masked values: what the admin and the API show of them."""
    return {str(name): mask_secret(str(value)) for name, value in (headers or {}).items()}
