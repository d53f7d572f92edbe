"""Showing secrets without revealing them."""


def mask_secret(value: str | None) -> str:
    """`sk-abc…wxyz` style: enough to recognise a key, never enough to use it."""
    if not value:
        return ""
    if len(value) <= 8:
        return "•" * len(value)
    return f"{value[:3]}…{value[-4:]}"
