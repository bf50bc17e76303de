"""Reading ``application/x-www-form-urlencoded`` bodies (the only kind our forms send), with a
size limit, and without a multipart parser."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import Request

from certfleet.errors import InvalidInput

__all__ = ["MAX_FORM_BYTES", "read_form"]

MAX_FORM_BYTES = 64 * 1024


async def read_form(request: Request) -> dict[str, str]:
    """The form's fields (the last value of a repeated one); 400 for another content type or
    an oversized body, which is refused before it is buffered whole."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise InvalidInput("expected a form (application/x-www-form-urlencoded)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidInput(f"form larger than {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise InvalidInput("form is not UTF-8") from None
    return {k: v[-1] for k, v in fields.items()}
