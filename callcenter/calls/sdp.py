"""The little SDP the bridge writes itself (pure): a hold answer for an agent's
phone while the customer is called, and the origin line kept across the
phone's session (RFC 3264 §8).

The bridge relays SDP untouched, except on an outbound call (docs/callbacks.md):
the agent's phone answers an offerless INVITE with its offer, which goes on to
the customer; the phone's 200 is ACKed at once with an answer that holds the
media (`a=inactive`, RFC 3264 §5.1), so it is not left un-ACKed while the
customer's phone rings; once the customer answers, the phone is re-INVITEd and
its ACK carries the customer's answer, under the origin (`o=`) of that first
answer with the next version: to the phone, one session from one peer.
"""

from __future__ import annotations

__all__ = ["hold_answer", "origin_line", "with_origin"]

#: SDP lines copied from each media section of the offer into the hold answer:
#: the formats' definitions, so the answer names the same codecs.
_KEPT = ("a=rtpmap:", "a=fmtp:")


def origin_line(session: int, version: int, host: str) -> str:
    """Our `o=` line (RFC 4566 §5.2): the session id and version are numbers."""
    return f"o=callcenter {session} {version} IN IP4 {host}"


def hold_answer(offer: bytes, origin: str, host: str) -> bytes | None:
    """An answer to `offer` that accepts every stream as it is offered but
    inactive (no media either way): the same m-lines, formats and their
    rtpmap/fmtp, port 9 (port 0 for a stream the offer itself refused).
    None if the offer has no media line (no SDP an answer can be made for)."""
    try:
        text = offer.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    out = ["v=0", origin, "s=-", f"c=IN IP4 {host}", "t=0 0"]
    media = 0
    for line in lines:
        if line.startswith("m="):
            parts = line[2:].split()
            if len(parts) < 4:
                return None
            port = "0" if parts[1] == "0" else "9"
            out.append(f"m={parts[0]} {port} {' '.join(parts[2:])}")
            out.append("a=inactive")
            media += 1
        elif media and line.startswith(_KEPT):
            out.insert(len(out) - 1, line)  # before this section's a=inactive
    if not media:
        return None
    return ("\r\n".join(out) + "\r\n").encode()


def with_origin(sdp: bytes, origin: str) -> bytes:
    """`sdp` with its `o=` line replaced by `origin` (added if it has none)."""
    lines = sdp.split(b"\r\n") if b"\r\n" in sdp else sdp.split(b"\n")
    new = origin.encode()
    for i, line in enumerate(lines):
        if line.startswith(b"o="):
            lines[i] = new
            return b"\r\n".join(lines)
    return b"\r\n".join([lines[0], new, *lines[1:]])
