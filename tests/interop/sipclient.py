"""A minimal blocking SIP-over-UDP client for probing peers from tests.

Independent of the ``callcenter`` package on purpose: it checks the peers
(Kamailio) with a second, simple implementation.  Supports REGISTER with digest
authentication (RFC 2617 / RFC 7616: MD5 and SHA-256, qop=auth or none).
"""

from __future__ import annotations

import hashlib
import re
import socket
import time
import uuid
from dataclasses import dataclass

_HASHES = {
    "MD5": hashlib.md5,
    "SHA-256": hashlib.sha256,
}


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    raw: str

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


def parse_response(data: bytes) -> Response | None:
    text = data.decode("utf-8", "replace")
    head = text.split("\r\n\r\n", 1)[0]
    lines = head.split("\r\n")
    match = re.match(r"SIP/2\.0 (\d{3}) ?(.*)", lines[0])
    if not match:
        return None
    headers = []
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers.append((key.strip(), value.strip()))
    return Response(int(match.group(1)), match.group(2), headers, text)


def parse_challenge(value: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = value.partition(" ")
    params = {
        key.lower(): (quoted if quoted else bare)
        for key, quoted, bare in re.findall(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))', rest)
    }
    return scheme, params


def digest_authorization(
    challenge: dict[str, str],
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str | None = None,
    nc: int = 1,
) -> str:
    """The ``Digest ...`` credentials answering ``challenge`` (parsed params)."""
    algorithm = challenge.get("algorithm", "MD5").upper()
    if algorithm not in _HASHES:
        raise ValueError(f"unsupported digest algorithm {algorithm}")
    hash_fn = _HASHES[algorithm]

    def h(text: str) -> str:
        return hash_fn(text.encode()).hexdigest()

    realm = challenge["realm"]
    nonce = challenge["nonce"]
    ha1 = h(f"{username}:{realm}:{password}")
    ha2 = h(f"{method}:{uri}")
    qops = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
    parts = [
        f'username="{username}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
        f"algorithm={algorithm}",
    ]
    if "auth" in qops:
        cnonce = cnonce or uuid.uuid4().hex[:16]
        nc_text = f"{nc:08x}"
        response = h(f"{ha1}:{nonce}:{nc_text}:{cnonce}:auth:{ha2}")
        parts += ["qop=auth", f'cnonce="{cnonce}"', f"nc={nc_text}"]
    else:
        response = h(f"{ha1}:{nonce}:{ha2}")
    parts.append(f'response="{response}"')
    if "opaque" in challenge:
        parts.append(f'opaque="{challenge["opaque"]}"')
    return "Digest " + ", ".join(parts)


class UdpSipClient:
    """One UDP socket on 127.0.0.1 sending requests and waiting for final responses."""

    def __init__(self, server: tuple[str, int], *, local_host: str = "127.0.0.1") -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((local_host, 0))
        self.local = self.sock.getsockname()
        self.call_id = uuid.uuid4().hex
        self.from_tag = uuid.uuid4().hex[:10]
        self.cseq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> UdpSipClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        uri: str,
        *,
        from_uri: str,
        to_uri: str,
        headers: list[tuple[str, str]] | None = None,
        timeout: float = 2.0,
    ) -> Response | None:
        """Send one request (retransmitted every 0.5 s); return its final response."""
        self.cseq += 1
        branch = "z9hG4bK" + uuid.uuid4().hex[:16]
        host, port = self.local
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {host}:{port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <{from_uri}>;tag={self.from_tag}",
            f"To: <{to_uri}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} {method}",
        ]
        lines += [f"{k}: {v}" for k, v in (headers or [])]
        lines.append("Content-Length: 0")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
        deadline = time.monotonic() + timeout
        next_send = 0.0
        while (now := time.monotonic()) < deadline:
            if now >= next_send:
                self.sock.sendto(data, self.server)
                next_send = now + 0.5
            self.sock.settimeout(max(0.01, min(deadline, next_send) - now))
            try:
                raw, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            resp = parse_response(raw)
            if resp is None or branch not in (resp.header("Via") or ""):
                continue
            if resp.status >= 200:
                return resp
            next_send = deadline  # provisional: stop retransmitting
        return None

    def register(
        self,
        user: str,
        password: str,
        *,
        domain: str,
        expires: int = 300,
        contact: str | None = None,
        timeout: float = 2.0,
    ) -> tuple[Response | None, Response | None]:
        """REGISTER ``user``; answer one 401/407 challenge. Returns (challenge, final)."""
        uri = f"sip:{self.server[0]}:{self.server[1]}"
        aor = f"sip:{user}@{domain}"
        contact = contact or f"<sip:{user}@{self.local[0]}:{self.local[1]}>"
        base = [("Contact", contact), ("Expires", str(expires))]
        first = self.request("REGISTER", uri, from_uri=aor, to_uri=aor, headers=base,
                             timeout=timeout)  # fmt: skip
        if first is None or first.status not in (401, 407):
            return None, first
        header = "WWW-Authenticate" if first.status == 401 else "Proxy-Authenticate"
        _, params = parse_challenge(first.header(header) or "")
        creds = digest_authorization(params, method="REGISTER", uri=uri,
                                     username=user, password=password)  # fmt: skip
        auth_header = "Authorization" if first.status == 401 else "Proxy-Authorization"
        final = self.request("REGISTER", uri, from_uri=aor, to_uri=aor,
                             headers=[*base, (auth_header, creds)], timeout=timeout)  # fmt: skip
        return first, final
