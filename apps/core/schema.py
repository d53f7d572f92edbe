"""OpenAPI: the error answers the API gives, documented on every operation.

drf-spectacular documents only the success answer; schemathesis (tests/test_api_schemathesis.py)
checks every answer against the schema, so the errors each operation can give are added here:
401 and 403 everywhere, 404 where the path names a row, 400 where input is validated, 409
where a delete can find the row still in use. Views declare any other error themselves.
"""

from __future__ import annotations

from rest_framework import serializers

ERROR_DETAIL = "#/components/schemas/ErrorDetail"
VALIDATION_ERRORS = {
    "type": "object",
    "additionalProperties": True,
    "description": "Each invalid field with its messages, or `detail` for a malformed body.",
}
# Query parameters that never answer 400 (DRF's pagination ignores what it cannot read).
LENIENT_QUERY = {"limit", "offset"}


class ErrorDetailSerializer(serializers.Serializer):
    """The body of an error answer that is not about one field."""

    detail = serializers.CharField()


def _json(schema: dict, description: str) -> dict:
    return {"content": {"application/json": {"schema": schema}}, "description": description}


def error_responses(result, generator, request, public):
    """A POSTPROCESSING_HOOKS entry: add the error answers to every operation."""
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault(
        "ErrorDetail",
        {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]},
    )
    detail = {"$ref": ERROR_DETAIL}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            errors = {
                "401": _json(detail, "Not authenticated."),
                "403": _json(detail, "Not allowed for this user."),
                "429": _json(
                    detail, "Too many requests from this address; see the Retry-After header."
                ),
            }
            if "{" in path:
                errors["404"] = _json(detail, "No such row.")
            queries = {
                parameter["name"]
                for parameter in operation.get("parameters", [])
                if parameter.get("in") == "query"
            }
            if "requestBody" in operation or queries - LENIENT_QUERY:
                errors["400"] = _json(VALIDATION_ERRORS, "Invalid input.")
            if method == "delete":
                errors["409"] = _json(detail, "Still in use.")
            responses = operation.setdefault("responses", {})
            for code, response in errors.items():
                responses.setdefault(code, response)
    return result
