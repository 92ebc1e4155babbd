"""Building requests and responses the way RFC 3261 §8 says a UA must."""

from __future__ import annotations

from .message import Headers, Request, Response, reason_phrase

__all__ = ["make_response", "safe_reason"]

# Headers a response copies from its request (§8.2.6.2); Record-Route too for
# responses that establish a dialog (§12.1.1).
_COPIED = ("Via", "From", "To", "Call-ID", "CSeq")
_COPIED_BUT_TO = ("Via", "From", "Call-ID", "CSeq")


def safe_reason(reason: str) -> str:
    """A reason phrase (a peer's error named in it) that cannot break the status
    line (§25.1 Reason-Phrase): unprintable characters blanked, at most 120."""
    cleaned = "".join(c if c.isprintable() else " " for c in reason)
    return cleaned[:120] or "Bad Request"


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    extra: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> Response:
    """A response to `request` with the §8.2.6.2 headers copied.

    `to_tag` is added to To when the request's To has none and the status is
    above 100 (§8.2.6.2: a 100 Trying never carries a tag it invents).
    """
    headers = Headers()
    to_changed = False
    for name in _COPIED:
        for value in (
            request.headers.get_all(name) if name == "Via" else [request.headers.get(name)]
        ):
            if value is None:
                continue
            if (
                name == "To"
                and to_tag
                and status > 100
                # Only parameters after the '>' are the header's: a `tag` URI
                # parameter inside <...> is not a To tag (§20.10).
                and ";tag=" not in value[value.rfind(">") + 1 :].lower().replace(" ", "")
            ):
                # A bare trailing ';' parses (nothing follows it), but not before ours.
                value = value.rstrip(" \t;") + f";tag={to_tag}"
                to_changed = True
            headers.add(name, value)
    # Copied verbatim: what the request's fields parsed to is what these do.
    headers.share_parsed(request.headers, _COPIED if not to_changed else _COPIED_BUT_TO)
    if 100 < status < 300 and request.method in ("INVITE", "SUBSCRIBE"):
        for rr in request.headers.get_all("Record-Route"):
            headers.add("Record-Route", rr)
    for name, value in extra or []:
        headers.add(name, value)
    return Response(
        headers=headers, status=status, reason=reason or reason_phrase(status), body=body
    )
