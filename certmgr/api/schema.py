"""The OpenAPI document's finishing touches (a drf-spectacular postprocessing hook)."""

from __future__ import annotations

from .permissions import MAX_ID
from .problems import PROBLEM_JSON

PROBLEM_REF = "#/components/schemas/Problem"
# Operations that need a body (drf-spectacular cannot tell for an either-or body): without one, 400.
BODY_REQUIRED = {"certificates_upload", "channels_create", "certificates_lifecycle"}


def finish(result: dict, generator, request, public) -> dict:
    """Ids in paths are database keys (1 to 2^63-1; anything else is simply not found); errors are
    problem details."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if parameter.get("in") == "path" and schema.get("type") == "integer":
                    schema.update(minimum=1, maximum=MAX_ID)
            _problem_media_type(operation.get("responses", {}))
            if operation.get("operationId") in BODY_REQUIRED:
                operation["requestBody"]["required"] = True
    return result


def _problem_media_type(responses: dict) -> None:
    """Errors are answered as application/problem+json (RFC 9457), not application/json."""
    for response in responses.values():
        content = response.get("content", {})
        body = content.get("application/json")
        if body is not None and body.get("schema", {}).get("$ref") == PROBLEM_REF:
            content[PROBLEM_JSON] = content.pop("application/json")
