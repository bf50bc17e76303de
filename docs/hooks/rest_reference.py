"""MkDocs hook: the REST reference (``reference/rest.md``), generated at build time from the
API app's own OpenAPI document, so an endpoint added to any router appears without editing
the docs.

The document is built without a database: ``create_api_app`` only wires routers and
middleware, so a stand-in platform (every attribute another stand-in, settings with the real
``[server]`` defaults) is enough for ``app.openapi()``. Should the app ever need a real
platform while it is built, the hook opens one on a temporary, freshly migrated SQLite data
directory instead."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

PAGE = "reference/rest.md"
_METHODS = ("get", "post", "put", "patch", "delete")


class _StandIn:
    """Any attribute, any call: what the app reads from its platform while it is wired."""

    def __getattr__(self, name: str) -> _StandIn:
        return _StandIn()

    def __call__(self, *args: Any, **kwargs: Any) -> _StandIn:
        return _StandIn()


def openapi_document() -> dict[str, Any]:
    from certfleet.api import create_api_app
    from certfleet.config._settings import ServerSettings

    settings = _StandIn()
    settings.__dict__["server"] = ServerSettings()
    platform = _StandIn()
    platform.__dict__["settings"] = settings
    try:
        document: dict[str, Any] = create_api_app(platform).openapi()  # type: ignore[arg-type]
        return document
    except Exception:  # noqa: BLE001 - the app wanted a real platform: build it on one
        return _openapi_on_a_real_platform()


def _openapi_on_a_real_platform() -> dict[str, Any]:
    from certfleet.api import create_api_app
    from certfleet.app import open_platform
    from certfleet.config import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir(mode=0o700)
        settings = load_settings({}, data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'db.sqlite'}")
        platform = open_platform(settings, create=True)
        try:
            document: dict[str, Any] = create_api_app(platform).openapi()
        finally:
            platform.close()
    return document


def operation_anchor(method: str, path: str) -> str:
    """``GET /api/v1/certificates/{serial}`` -> ``get-api-v1-certificates-serial``."""
    return re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-")


def schema_anchor(name: str) -> str:
    return "schema-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _prose(text: str) -> str:
    """Docstring prose as Markdown: code spans kept, everything else literal (``*.x`` is not
    emphasis, ``<token>`` is not HTML)."""
    parts = re.split(r"(`+[^`]*`+)", text or "")
    for index in range(0, len(parts), 2):
        part = parts[index].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        parts[index] = re.sub(r"([\\*_\[\]])", r"\\\1", part)
    return "".join(parts).strip()


def _type(schema: dict[str, Any]) -> str:
    """A schema in a few words, with links to the named schemas it uses."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[`{name}`](#{schema_anchor(name)})"
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            return " or ".join(_type(option) for option in schema[combinator])
    if "allOf" in schema:
        return " and ".join(_type(option) for option in schema["allOf"])
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(value)}`" for value in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object" and "title" in schema and "properties" in schema:
        return f"`{schema['title']}` (object: {', '.join(schema['properties'])})"
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return str(kind)


def _examples(holder: dict[str, Any]) -> list[Any]:
    """Examples of a schema or a media type, whichever way they were declared."""
    found: list[Any] = []
    if "example" in holder:
        found.append(holder["example"])
    examples = holder.get("examples")
    if isinstance(examples, list):
        found.extend(examples)
    elif isinstance(examples, dict):
        found.extend(e.get("value", e) if isinstance(e, dict) else e for e in examples.values())
    return found


def _example_blocks(examples: list[Any], label: str) -> list[str]:
    lines = []
    for example in examples:
        lines += [f"{label}:\n", "```json", json.dumps(example, indent=2, ensure_ascii=False), "```\n"]
    return lines


def _media_examples(media: dict[str, Any], schemas: dict[str, Any]) -> list[Any]:
    """A body's examples: its own, else those of the named schema it is (or is a list of)."""
    found = _examples(media)
    schema = media.get("schema", {})
    if found or not schema:
        return found
    if "$ref" in schema:
        return _examples(schemas.get(schema["$ref"].rsplit("/", 1)[-1], {}))
    items = schema.get("items", {})
    if schema.get("type") == "array" and "$ref" in items:
        return [[e] for e in _examples(schemas.get(items["$ref"].rsplit("/", 1)[-1], {}))]
    return []


def _content(content: dict[str, Any], schemas: dict[str, Any]) -> list[str]:
    lines = []
    for media_type, media in content.items():
        schema = media.get("schema", {})
        lines.append(f"- `{media_type}`: {_type(schema)}" if schema else f"- `{media_type}`")
    lines.append("")
    for media in content.values():
        lines += _example_blocks(_media_examples(media, schemas), "Example")
    return lines


def _operation(
    method: str, path: str, op: dict[str, Any], secured_by_default: bool, schemas: dict[str, Any]
) -> list[str]:
    lines = [f"### `{method.upper()} {path}` {{ #{operation_anchor(method, path)} }}\n"]
    if op.get("summary"):
        lines.append(f"**{_prose(op['summary'])}**\n")
    if op.get("description"):
        lines.append(_prose(op["description"]) + "\n")
    security = op.get("security", [{}] if secured_by_default else [])
    needs_token = any(requirement for requirement in security)
    lines.append(
        "Authentication: `Authorization: Bearer <token>`.\n" if needs_token else "Authentication: none.\n"
    )
    parameters = op.get("parameters", [])
    if parameters:
        lines.append("**Parameters**\n")
        for param in parameters:
            required = ", required" if param.get("required") else ""
            text = _prose(param.get("description") or param.get("schema", {}).get("description", ""))
            kind = _type(param.get("schema", {}))
            lines.append(
                f"- `{param['name']}` ({param['in']}, {kind}{required})" + (f": {text}" if text else "")
            )
        lines.append("")
    body = op.get("requestBody")
    if body:
        lines.append("**Request body**" + (" (required)" if body.get("required") else "") + "\n")
        if body.get("description"):
            lines.append(_prose(body["description"]) + "\n")
        lines += _content(body.get("content", {}), schemas)
    lines.append("**Responses**\n")
    # Answers with the same body (the problem documents, mostly) share one line.
    by_body: dict[str, list[str]] = {}
    for status, response in op.get("responses", {}).items():
        content = response.get("content", {})
        body_kinds = ", ".join(f"`{media}` {_type(m.get('schema', {}))}" for media, m in content.items())
        by_body.setdefault(body_kinds, []).append(f"`{status}` {_prose(response.get('description', ''))}")
    for body_kinds, statuses in by_body.items():
        lines.append(f"- {', '.join(statuses)}" + (f": {body_kinds}" if body_kinds else ""))
    lines.append("")
    for status, response in op.get("responses", {}).items():
        if str(status).startswith("2"):
            for media in response.get("content", {}).values():
                lines += _example_blocks(_media_examples(media, schemas), f"Example `{status}`")
    return lines


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### `{name}` {{ #{schema_anchor(name)} }}\n"]
    if schema.get("description"):
        lines.append(_prose(schema["description"]) + "\n")
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    if properties:
        for prop, spec in properties.items():
            flag = ", required" if prop in required else ""
            default = f", default `{json.dumps(spec['default'])}`" if "default" in spec else ""
            text = _prose(spec.get("description", ""))
            lines.append(f"- `{prop}` ({_type(spec)}{flag}{default})" + (f": {text}" if text else ""))
        lines.append("")
    elif "enum" in schema:
        lines.append(f"One of {_type(schema)}.\n")
    else:
        lines.append(f"Type: {_type(schema)}.\n")
    lines += _example_blocks(_examples(schema), "Example")
    return lines


def rest_reference_markdown(document: dict[str, Any]) -> str:
    info = document.get("info", {})
    lines = [
        "# REST reference\n",
        f"Generated from the OpenAPI {document.get('openapi', '')} document of certfleet "
        f"{info.get('version', '')}: a running server serves it at `/api/v1/openapi.json` and an "
        "interactive view at `/api/v1/docs`. Errors are `application/problem+json` (RFC 7807) with "
        "a `detail` naming the precise reason; request bodies are bounded (413 over the limit).\n",
    ]
    if info.get("description"):
        lines.append(_prose(info["description"]) + "\n")
    secured_by_default = bool(document.get("security"))
    schemas = document.get("components", {}).get("schemas", {})
    groups: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                tag = (item[method].get("tags") or ["other"])[0]
                groups.setdefault(tag, []).append((method, path, item[method]))
    for tag, operations in groups.items():
        lines.append(f"## {_prose(tag.capitalize())}\n")
        for method, path, op in operations:
            lines += _operation(method, path, op, secured_by_default, schemas)
    if schemas:
        lines.append("## Schemas\n")
        for name in sorted(schemas):
            lines += _schema(name, schemas[name])
    return "\n".join(lines) + "\n"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, PAGE, content=rest_reference_markdown(openapi_document())))
    return files
