"""AWS evidence of layer 5, masked before it is stored: Lambda and ECS environments, EC2 user data.

``sanitize(call, data)`` is applied by the collector (and the AWS CLI folder loader) to every response it
keeps. Environment values that are secret-named (``DB_PASSWORD``) or that a detection rule recognises (a token,
a URL with a password) are replaced by their masked form, and listed under ``OutsideinSecrets``; user data is
decoded from base64 (and gzip), scanned line by line, and its raw value dropped (only ``OutsideinSecrets`` and its
size are kept, and the decoding error of user data that cannot be decoded). Secrets Manager listings carry no
secret value and are kept as they are.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from typing import Any

from outsidein.redact import mask
from outsidein.secrets.rules import placeholder, scan_line, secret_name
from outsidein.secrets.scan import scan_text

SECRETS_KEY = "OutsideinSecrets"


def _env_secret(name: str, value: Any) -> dict[str, str] | None:
    text = str(value) if value is not None else ""
    if not text:
        return None
    hits = scan_line(f"{name}={text}".encode(), "")
    rule = hits[0].rule if hits else ("secret-named variable" if secret_name(name) and not placeholder(text) else None)
    return {"name": name, "masked": mask(text), "rule": rule} if rule else None


def _lambda(data: dict[str, Any]) -> dict[str, Any]:
    for function in data.get("Functions", []):
        variables = (function.get("Environment") or {}).get("Variables") or {}
        found = []
        for name, value in variables.items():
            hit = _env_secret(name, value)
            if hit:
                variables[name] = hit["masked"]
                found.append(hit)
        function[SECRETS_KEY] = found
    return data


def _task_definition(data: dict[str, Any]) -> dict[str, Any]:
    task = data.get("taskDefinition") or {}
    found = []
    for container in task.get("containerDefinitions", []):
        for pair in container.get("environment", []):
            hit = _env_secret(str(pair.get("name", "")), pair.get("value"))
            if hit:
                pair["value"] = hit["masked"]
                found.append({**hit, "container": container.get("name", "?")})
    task[SECRETS_KEY] = found
    return data


def decode_user_data(value: str) -> str:
    """Strict: a character outside base64 (whitespace aside) is an error, not silently dropped."""
    raw = base64.b64decode("".join(value.split()), validate=True)
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", "replace")


def _user_data(data: dict[str, Any]) -> dict[str, Any]:
    """The user data's findings; one that cannot be decoded keeps its error, in ``UserData.Error`` and as an
    ``{"error": …}`` entry of ``OutsideinSecrets`` (the list the inventory keeps), so that the check is
    NOT_ASSESSED for that instance, never PASS."""
    value = (data.get("UserData") or {}).get("Value")
    found: list[dict[str, Any]] = []
    size = 0
    error: str | None = None
    if value:
        try:
            text = decode_user_data(str(value))
        except (binascii.Error, ValueError, OSError, EOFError, zlib.error) as exc:
            error = f"user data could not be decoded ({type(exc).__name__}: {str(exc)[:160]}): not scanned"
            text = ""
        size = len(text)
        found = [{"line": at, "rule": c.rule, "masked": c.masked} for at, c in scan_text(text.encode(), "user-data")]
        if error:
            found.append({"error": error})
    user_data: dict[str, Any] = {"Value": None, "Size": size}
    if error:
        user_data["Error"] = error
    return {"InstanceId": data.get("InstanceId"), "UserData": user_data, SECRETS_KEY: found}


def sanitize(call: str, data: Any) -> Any:
    """The response with every secret value masked (see the module docstring)."""
    if not isinstance(data, dict):
        return data
    if call == "lambda.list_functions":
        return _lambda(data)
    if call == "ecs.describe_task_definition":
        return _task_definition(data)
    if call == "ec2.describe_instance_attribute":
        return _user_data(data)
    return data
