"""Bytes to messages and back (RFC 3261 §7, §18.3, §20, §25; RFC 4475 torture tests).

The parser's contract (STYLE: "the parser is total") is checked twice: by hand
for every rule below, and by hypothesis for arbitrary and mutated input, where
anything but a `Message` or a `ParseError` is a failure.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.sip.builders import make_response
from callcenter.sip.errors import MessageTooLarge, ParseError
from callcenter.sip.headers import CSeq, NameAddr, Params, SipURI, Via, quote
from callcenter.sip.message import Headers, Message, Request, Response
from callcenter.sip.parser import DEFAULT_MAX_SIZE, KeepAlive, StreamFramer, parse_message

from . import messages as M

# -- helpers ---------------------------------------------------------------------------------

BASE_HEADERS = [
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-base",
    "Max-Forwards: 70",
    "To: <sip:hotline@example.com>",
    "From: <sip:caller@example.com>;tag=f1",
    "Call-ID: base-1@192.0.2.1",
    "CSeq: 1 OPTIONS",
]


def build(
    start: str = "OPTIONS sip:hotline@example.com SIP/2.0",
    headers: list[str] | None = None,
    body: bytes = b"",
    *,
    content_length: str | None = "auto",
) -> bytes:
    """A message from its start line and header lines; Content-Length last unless None."""
    lines = [start, *(BASE_HEADERS if headers is None else headers)]
    if content_length == "auto":
        lines.append(f"Content-Length: {len(body)}")
    elif content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def without(name: str) -> list[str]:
    return [h for h in BASE_HEADERS if not h.lower().startswith(name.lower() + ":")]


def replacing(name: str, line: str) -> list[str]:
    return [line if h.lower().startswith(name.lower() + ":") else h for h in BASE_HEADERS]


def request(data: bytes, **kw: object) -> Request:
    msg = parse_message(data, **kw)  # type: ignore[arg-type]
    assert isinstance(msg, Request)
    return msg


def response(data: bytes) -> Response:
    msg = parse_message(data)
    assert isinstance(msg, Response)
    return msg


def parse_error(data: bytes, **kw: object) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_message(data, **kw)  # type: ignore[arg-type]
    return info.value


# -- start lines (§7.1, §7.2) ----------------------------------------------------------------


def test_request_line_and_typed_accessors() -> None:
    msg = request(M.INVITE)
    assert (msg.method, msg.uri, msg.version) == (
        "INVITE",
        "sip:hotline@pbx.example.com",
        "SIP/2.0",
    )
    assert msg.call_id == "a84b4c76e66710@192.0.2.10"
    assert msg.cseq == CSeq(314159, "INVITE")
    assert msg.from_.tag == "1928301774" and msg.from_.display_name == "Caller"
    assert msg.to.tag is None and str(msg.to.uri) == "sip:hotline@pbx.example.com"
    assert [v.branch for v in msg.vias] == ["z9hG4bKp2-1", "z9hG4bKp1-1", "z9hG4bKuac-1"]
    assert msg.top_via.host == "p2.example.com"
    assert [str(c.uri) for c in msg.contacts] == ["sip:13812345678@192.0.2.10:5060;transport=udp"]
    assert msg.body == M.SDP
    assert repr(msg) == "<Request INVITE sip:hotline@pbx.example.com>"


def test_extension_method_and_version_case() -> None:
    msg = request(
        build("foo-Bar.1 sip:x@example.com sip/2.0", replacing("CSeq", "CSeq: 5 foo-Bar.1"))
    )
    assert msg.method == "foo-Bar.1" and msg.version == "SIP/2.0"


@pytest.mark.parametrize(
    ("line", "status", "reason"),
    [
        ("SIP/2.0 200 OK", 200, "OK"),
        ("SIP/2.0 180 Ringing", 180, "Ringing"),
        ("SIP/2.0 486 Busy  Here", 486, "Busy  Here"),
        ("SIP/2.0 699 Something New", 699, "Something New"),
        ("SIP/2.0 100 ", 100, ""),
        ("SIP/2.0 100", 100, ""),
        ("sip/2.0 603 Decline", 603, "Decline"),
    ],
)
def test_status_lines(line: str, status: int, reason: str) -> None:
    msg = response(build(line, replacing("CSeq", "CSeq: 1 INVITE")))
    assert (msg.status, msg.reason, msg.version) == (status, reason, "SIP/2.0")


@pytest.mark.parametrize(
    "line",
    [
        "INVITE sip:x@example.com SIP/2.0 extra",
        "INVITE  sip:x@example.com  SIP/2.0",  # RFC 4475 lwsstart
        "OPTIONS sip:x@example.com SIP/2.0  ",  # RFC 4475 trws
        "INVITE sip:user@example.com; lr SIP/2.0",  # RFC 4475 lwsruri
        "INVITE\tsip:x@example.com\tSIP/2.0",
        "INVITE sip:x@example.com",
        "INVITE sip:x@example.com HTTP/1.1",
        "INV ITE sip:x@example.com SIP/2.0",
        "IN<VITE sip:x@example.com SIP/2.0",
        "SIP/2.0 99 Too Low",
        "SIP/2.0 700 Too High",
        "SIP/2.0 20 OK",
        "SIP/2.0 2000 OK",
        "SIP/2.0 4294967301 better not break the receiver",  # RFC 4475 bigcode
        "SIP/2.0 \u0662\u0660\u0660 OK",  # Arabic-Indic digits are not DIGIT
        "SIP/2.0  200 OK",
        "HTTP/1.1 200 OK",
        "hello world",
        "\x00",
    ],
)
def test_bad_start_lines_cannot_be_answered(line: str) -> None:
    exc = parse_error(build(line))
    assert exc.message is None
    assert exc.status_hint == 400


def test_leading_crlfs_before_the_start_line_are_ignored() -> None:
    """§7.5: implementations SHOULD ignore CRLFs that appear before the start line."""
    plain = request(M.OPTIONS)
    assert request(b"\r\n\r\n\r\n" + M.OPTIONS) == plain
    assert request(b"\n\r\n" + M.OPTIONS) == plain


def test_bare_lf_line_ends_are_accepted() -> None:
    plain = request(M.INVITE)
    head, body = M.INVITE.split(b"\r\n\r\n", 1)
    lf = request(head.replace(b"\r\n", b"\n") + b"\n\n" + body)
    assert (lf.method, lf.uri, list(lf.headers)) == (plain.method, plain.uri, list(plain.headers))
    assert lf.body == M.SDP


@pytest.mark.parametrize("data", [b"", b"\r\n", b"\r\n\r\n\r\n", b"\n\n"])
def test_empty_input(data: bytes) -> None:
    assert parse_error(data).message is None


# -- header fields (§7.3) --------------------------------------------------------------------


def test_line_folding_joins_with_one_space() -> None:
    msg = request(
        build(
            headers=[
                *BASE_HEADERS,
                "Subject: first line",
                " \t second line",
                "\tthird",
                "X-Empty-First:",
                "   value after fold",
                "X-Trailing: a",
                "    ",
            ]
        )
    )
    assert msg.headers.get("Subject") == "first line second line third"
    assert msg.headers.get("X-Empty-First") == "value after fold"
    assert msg.headers.get("X-Trailing") == "a"


def test_folded_values_survive_serialisation() -> None:
    msg = request(M.WSINV)
    again = request(msg.serialize())
    # serialize() writes Content-Length last; everything else keeps its place.
    assert [f for f in again.headers if f[0] != "Content-Length"] == [
        f for f in msg.headers if f[0] != "Content-Length"
    ]
    assert again.headers.get("To") == msg.headers.get("To")


def test_continuation_before_any_header_is_an_error() -> None:
    data = b"OPTIONS sip:x@example.com SIP/2.0\r\n folded\r\n" + build().split(b"\r\n", 1)[1]
    assert parse_error(data).message is None


@pytest.mark.parametrize(
    "line", ["no colon here", ": no name", "Bad Name: x", "Na<me: x", "Via\x00: x"]
)
def test_bad_header_lines(line: str) -> None:
    parse_error(build(headers=[*BASE_HEADERS, line]))


def test_nul_in_a_header_is_refused_even_in_a_continuation() -> None:
    parse_error(build(headers=[*BASE_HEADERS, "X-A: a\x00b"]))
    parse_error(build(headers=[*BASE_HEADERS, "X-A: a", " b\x00c"]))
    # A NUL in the body is only data.
    assert request(build(body=b"\x00\x00")).body == b"\x00\x00"


def test_header_section_must_be_utf8() -> None:
    parse_error(build(headers=[*BASE_HEADERS, "X-A: caf\xe9"]).replace(b"caf\xc3\xa9", b"caf\xe9"))


def test_header_names_are_case_insensitive_and_compact_forms_expand() -> None:
    msg = request(M.REGISTER_COMPACT)
    names = [n for n, _ in msg.headers]
    assert names == [
        "Via", "Max-Forwards", "To", "From", "Call-ID", "CSeq", "Contact", "Supported",
        "Content-Length",
    ]  # fmt: skip
    assert msg.call_id == "reg-call-1@192.0.2.20"
    assert msg.to.uri.user == "agent-7" and msg.from_.tag == "reg-a"
    assert msg.top_via.port == 5062
    assert [c.params.get("expires") for c in msg.contacts] == ["3600", None]
    assert msg.contacts[1].params["q"] == "0.5"
    assert msg.headers.get_all("k") == ["path", "outbound"]
    assert msg.headers.get("l") == "0"
    mixed = request(
        build(
            headers=[
                "vIa: SIP/2.0/UDP h;branch=z9hG4bKm",
                "TO: <sip:a@b>",
                "fRoM: <sip:c@d>;tag=1",
                "CALL-id: mixed",
                "cseq: 1 OPTIONS",
            ]
        )
    )
    assert mixed.call_id == "mixed" and mixed.cseq.seq == 1


def test_list_headers_split_while_authorization_and_date_do_not() -> None:
    """RFC 4475 regaut01: an unknown Authorization scheme is just a value."""
    msg = request(
        build(
            headers=[
                *BASE_HEADERS,
                'Authorization: Digest username="bob", realm="a, b", nonce="n"',
                "Authorization: NoOneKnowsThisScheme opaque-data=here",
                "Date: Sat, 13 Nov 2010 23:29:00 GMT",
                "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
                "Route: <sip:p3.example.com;lr>",
            ]
        )
    )
    assert msg.headers.get_all("Authorization") == [
        'Digest username="bob", realm="a, b", nonce="n"',
        "NoOneKnowsThisScheme opaque-data=here",
    ]
    assert msg.headers.get_all("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]
    assert [NameAddr.parse(r).uri.host for r in msg.headers.get_all("Route")] == [
        "p1.example.com",
        "p2.example.com",
        "p3.example.com",
    ]


# -- body framing on datagrams (§18.3, §20.14) ----------------------------------------------


def test_content_length_shorter_than_the_datagram_truncates_the_body() -> None:
    msg = request(build(body=b"hello world", content_length="5"))
    assert msg.body == b"hello"
    assert request(build(body=b"trailing junk", content_length="0")).body == b""


def test_missing_content_length_means_the_rest_of_the_datagram() -> None:
    msg = request(build(body=b"\xff\xfe rest \r\n\r\n of it", content_length=None))
    assert msg.body == b"\xff\xfe rest \r\n\r\n of it"
    assert "Content-Length" not in msg.headers


def test_content_length_longer_than_the_datagram_is_a_400_to_answer() -> None:
    """§18.3: a request whose body is cut short SHOULD be answered 400."""
    exc = parse_error(build(body=b"short", content_length="9999"))  # RFC 4475 clerr
    assert exc.status_hint == 400
    assert isinstance(exc.message, Request) and exc.message.method == "OPTIONS"


def test_bodies_are_bytes_even_when_not_utf8() -> None:
    msg = request(M.BINARY_BODY)
    assert msg.body == b"\xff\xfe\x00\x01\r\n\r\n\x80\xc3(binary)\xe2\x82"
    assert msg.headers.get("Content-Length") == str(len(msg.body))


def test_stream_mode_keeps_the_body_the_framer_cut() -> None:
    data = build(body=b"0123456789")
    assert request(data, stream=True).body == b"0123456789"


@pytest.mark.parametrize(
    "value",
    [
        "-999",  # RFC 4475 ncl
        "abc",
        "1.5",
        "0x10",
        "1 2",
        "",
        "9999999999",
        "\u0665",  # Arabic-Indic five: isdigit() but not DIGIT
        "\u00b2",  # superscript two: isdigit() yet int() refuses it
    ],
)
def test_bad_content_length(value: str) -> None:
    exc = parse_error(build(body=b"12345", content_length=value))
    assert exc.status_hint == 400


def test_conflicting_content_lengths_are_refused_equal_ones_tolerated() -> None:
    """RFC 4475 mcl01."""
    two = [*BASE_HEADERS, "Content-Length: 3"]
    parse_error(build(headers=two, body=b"abcde", content_length="5"))
    assert request(build(headers=two, body=b"abc", content_length="3")).body == b"abc"


# -- validation (§8.1.1, §8.2) --------------------------------------------------------------


@pytest.mark.parametrize("name", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_missing_mandatory_header_is_answerable_with_400(name: str) -> None:
    exc = parse_error(build(headers=without(name)))
    assert exc.status_hint == 400
    assert exc.reason == f"Missing {name} header"
    assert isinstance(exc.message, Request)
    assert exc.message.method == "OPTIONS" and exc.message.uri == "sip:hotline@example.com"


def test_missing_mandatory_header_in_a_response_keeps_the_response() -> None:
    exc = parse_error(build("SIP/2.0 200 OK", without("Call-ID")))
    assert isinstance(exc.message, Response) and exc.message.status == 200


def test_missing_max_forwards_is_tolerated() -> None:
    assert "Max-Forwards" not in request(build(headers=without("Max-Forwards"))).headers


@pytest.mark.parametrize("value", ["0", "70", "255", "0068"])
def test_max_forwards_accepted(value: str) -> None:
    """RFC 4475 zeromf: zero is valid syntax (the proxy layer answers 483)."""
    msg = request(build(headers=replacing("Max-Forwards", f"Max-Forwards: {value}")))
    assert msg.headers.get("Max-Forwards") == value


@pytest.mark.parametrize("value", ["abc", "-1", "256", "300", "1e2", "", "7 0", "\u0663"])
def test_bad_max_forwards_is_a_400(value: str) -> None:
    exc = parse_error(build(headers=replacing("Max-Forwards", f"Max-Forwards: {value}")))
    assert exc.status_hint == 400 and isinstance(exc.message, Request)


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("Via", "Via: SIP/2.0/UDP"),
        ("Via", "Via: SIP/2.0/UDP 192.0.2.15;;,;,,"),  # RFC 4475 badinv01
        ("From", 'From: "Bell, Alexander <sip:a.g.bell@example.com>;tag=43'),  # quotbal
        ("From", "From: Bell, Alexander <sip:a.g.bell@example.com>;tag=43"),  # baddn
        ("To", "To: <sip:x@example.com"),
        # "*" is Contact's alone (§20.10, §20.20, §20.39); found by bench/fuzz_sip.py.
        ("To", "To: *"),
        ("From", "From: *"),
        ("Call-ID", "Call-ID: has space"),
        ("Call-ID", "Call-ID: a@b@c"),
        ("Call-ID", "Call-ID:"),
        ("CSeq", "CSeq: 36893488147419103232 OPTIONS"),  # RFC 4475 scalar02
        ("CSeq", "CSeq: 2147483648 OPTIONS"),
        ("CSeq", "CSeq: 1 INVITE"),  # RFC 4475 mismatch01
        ("CSeq", "CSeq: OPTIONS"),
    ],
)
def test_malformed_mandatory_header_is_answerable_with_400(name: str, line: str) -> None:
    exc = parse_error(build(headers=replacing(name, line)))
    assert exc.status_hint == 400 and isinstance(exc.message, Request)


@pytest.mark.parametrize("name", ["From", "To", "Call-ID", "CSeq", "Max-Forwards"])
def test_single_valued_header_given_twice_is_a_400(name: str) -> None:
    """§7.3.1: only comma-list headers may repeat (RFC 4475 multi01)."""
    line = next(h for h in BASE_HEADERS if h.startswith(name + ":"))
    exc = parse_error(build(headers=[*BASE_HEADERS, line.replace("1", "2")]))
    assert exc.status_hint == 400 and isinstance(exc.message, Request)


def test_compact_and_long_form_of_one_header_count_as_two() -> None:
    exc = parse_error(build(headers=[*BASE_HEADERS, "i: other-call"]))
    assert isinstance(exc.message, Request)


def test_unsupported_version_is_505() -> None:
    for version in ("SIP/3.0", "SIP/7.0", "SIP/2.1"):  # badvers
        exc = parse_error(build(f"OPTIONS sip:hotline@example.com {version}"))
        assert exc.status_hint == 505
        assert isinstance(exc.message, Request) and exc.message.version == version


@pytest.mark.parametrize(
    "uri",
    [
        "nobodyKnowsThisScheme:totallyopaquecontent",  # RFC 4475 unkscm
        "soap.beep://192.0.2.103:3002",  # RFC 4475 novelsc
        "http://example.com/",
        "mailto:agent@example.com",
    ],
)
def test_unknown_request_uri_scheme_is_416(uri: str) -> None:
    exc = parse_error(build(f"OPTIONS {uri} SIP/2.0"))
    assert exc.status_hint == 416
    assert isinstance(exc.message, Request) and exc.message.uri == uri


@pytest.mark.parametrize(
    "uri", ["sip:a@example.com", "SIPS:a@example.com", "tel:+1-201-555-0123", "urn:service:sos"]
)
def test_supported_request_uri_schemes(uri: str) -> None:
    assert request(build(f"OPTIONS {uri} SIP/2.0")).uri == uri


@pytest.mark.parametrize(
    "uri",
    ["<sip:user@example.com>", "sip:", "sip:host:0", "sip:user@", "just-text"],  # ltgtruri...
)
def test_malformed_request_uri_is_400(uri: str) -> None:
    exc = parse_error(build(f"OPTIONS {uri} SIP/2.0"))
    assert exc.status_hint == 400 and isinstance(exc.message, Request)


def test_oversize_message_is_513() -> None:
    data = build(body=b"x" * 3000)
    exc = parse_error(data, max_size=2000)
    assert isinstance(exc, MessageTooLarge)
    assert exc.status_hint == 513
    # The header section fits, so the request can still be answered.
    assert isinstance(exc.message, Request) and exc.message.method == "OPTIONS"
    # One byte under the limit is fine, exactly at the limit too.
    assert request(data, max_size=len(data)).body == b"x" * 3000
    assert isinstance(parse_error(data, max_size=len(data) - 1), MessageTooLarge)


def test_oversize_header_section_cannot_be_answered() -> None:
    data = build(headers=[*BASE_HEADERS, "X-Big: " + "y" * 5000])
    exc = parse_error(data, max_size=2000)
    assert isinstance(exc, MessageTooLarge) and exc.status_hint == 513
    assert exc.message is None


def test_default_size_limit() -> None:
    assert DEFAULT_MAX_SIZE == 65535
    big = build(headers=[*BASE_HEADERS, "X-Big: " + "z" * 70000])
    assert isinstance(parse_error(big), MessageTooLarge)


# -- RFC 4475 §3.1.1: valid messages ---------------------------------------------------------


def test_rfc4475_wsinv_short_tortuous_invite() -> None:
    msg = request(M.WSINV)
    assert msg.uri == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    assert SipURI.parse(msg.uri).params["unknownparam"] is None
    assert msg.to.tag == "1918181833n" and msg.to.uri.user == "vivekg"
    assert msg.headers.get("To") == "sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n"
    assert msg.from_.display_name == 'J Rosenberg \\"' and msg.from_.tag == "98asjd8"
    assert msg.headers.get("max-forwards") == "0068"
    assert msg.cseq == CSeq(9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in msg.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.headers.get("Subject") == ""
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    route = NameAddr.parse(msg.headers.get("Route") or "")
    assert (
        route.uri.params["unknownwith"] == "value" and route.uri.params["unknown-no-value"] is None
    )
    [contact] = msg.contacts
    assert contact.display_name == 'Quoted string ""'
    assert list(contact.params.items()) == [
        ("newparam", "newvalue"),
        ("secondparam", None),
        ("q", "0.33"),
    ]
    assert msg.body == M.SDP


def test_rfc4475_intmeth_wide_range_of_valid_characters() -> None:
    msg = request(M.INTMETH)
    assert msg.method == M.INTMETH_METHOD
    assert msg.cseq == CSeq(139122385, M.INTMETH_METHOD)
    uri = SipURI.parse(msg.uri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert uri.host == "example.com"
    assert msg.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert msg.to.display_name == "BEL:\x07 DEL:\x7f"
    assert msg.to.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert msg.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert msg.from_.params["fromParam''~+*_!.-%"] == '"работающий"'
    assert msg.from_.tag == "_token~1'+`*%!-."
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert msg.headers.get("Max-Forwards") == "255"
    assert msg.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_rfc4475_esc01_escapes_are_kept_as_written() -> None:
    msg = request(M.ESC01)
    uri = SipURI.parse(msg.uri)
    assert (uri.user, uri.host) == ("sips%3Auser%40example.com", "example.net")
    assert msg.to.uri.user == "%75se%72"
    assert msg.from_.uri.user == "I%20have%20spaces"
    assert msg.call_id == "esc01.239409asdfakjkn23onasd0-3234"
    assert msg.headers.get("Content-Type") == "application/sdp"
    [contact] = msg.contacts
    assert contact.uri.params["%6C%72"] is None
    assert contact.uri.params["n%61me"] == "v%61lue%25%34%31"


def test_rfc4475_esc02_escaped_method_is_another_method() -> None:
    msg = request(M.ESC02)
    assert msg.method == "RE%47IST%45R"  # not REGISTER: methods are not unescaped
    assert msg.to.display_name == "%Z%45"
    assert [c.uri.host for c in msg.contacts] == [
        "host1.example.com",
        "host2.example.com",
        "host3.example.com",
    ]


def test_rfc4475_escnull_escaped_nul_in_a_uri_is_fine() -> None:
    msg = request(
        build(
            "REGISTER sip:example.com SIP/2.0",
            [
                "To: sip:null-%00-null@example.com",
                "From: sip:null-%00-null@example.com;tag=839923423",
                "Max-Forwards: 70",
                "Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd",
                "CSeq: 14398234 REGISTER",
                "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw",
                "Contact: <sip:%00@host5.example.com>",
                "Contact: <sip:%00%00@host5.example.com>",
            ],
        )
    )
    assert msg.to.uri.user == "null-%00-null"
    assert [c.uri.user for c in msg.contacts] == ["%00", "%00%00"]


def test_rfc4475_lwsdisp_no_space_before_laquot() -> None:
    msg = request(M.LWSDISP)
    assert msg.from_.display_name == "caller"
    assert str(msg.from_.uri) == "sip:caller@example.com" and msg.from_.tag == "323"


def test_rfc4475_longreq_long_values_and_many_vias() -> None:
    msg = request(M.LONGREQ)
    long = "extreme" * 60
    vias = msg.vias
    assert len(vias) == 40
    assert vias[0].branch == f"z9hG4bK0{long}" and vias[19].host == "sip19.example.com"
    assert [v.host for v in vias[20:]] == [f"192.0.2.{i}" for i in range(20, 40)]
    assert msg.to.display_name == f"I have a user name of {long} proportion"
    assert msg.to.uri.port == 6000
    assert msg.to.uri.params[f"longparam{long}name"] == "shortvalue"
    assert msg.from_.tag == f"{long}1234"
    assert msg.call_id == f"longreq.one{long}really{long}longcallid"
    assert msg.headers.get(f"Unknown-{long}-Name") == (
        f"unknown-{long}-value;unknown-{long}-parameter-name=value"
    )
    assert msg.body == M.SDP


def test_rfc4475_dblreq_extra_bytes_in_a_datagram_are_discarded() -> None:
    msg = request(M.DBLREQ)
    assert msg.method == "REGISTER" and msg.body == b""
    # addr-spec form: ;tag is the header's parameter, not the URI's (§20.10).
    assert msg.from_.tag == "43251j3j324" and len(msg.from_.uri.params) == 0
    assert str(msg.contacts[0].uri) == "sip:j.user@host.example.com"


def test_rfc4475_semiuri_semicolon_in_the_user_part() -> None:
    msg = request(M.SEMIURI)
    uri = SipURI.parse(msg.uri)
    assert (uri.user, uri.host, len(uri.params)) == ("user;par=u%40example.net", "example.com", 0)
    assert msg.headers.get_all("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


def test_rfc4475_transports_unknown_transports_are_valid() -> None:
    msg = request(M.TRANSPORTS)
    assert [v.transport for v in msg.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert msg.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def test_rfc4475_unreason_non_ascii_reason_phrase() -> None:
    msg = response(M.UNREASON)
    assert msg.status == 200 and msg.reason == M.UNREASON_PHRASE
    assert msg.to.tag == "2229" and msg.body == M.SDP


def test_rfc4475_noreason_empty_reason_phrase() -> None:
    msg = response(M.NOREASON)
    assert (msg.status, msg.reason) == (100, "")


def test_rfc4475_unksm2_unknown_schemes_in_header_fields() -> None:
    msg = request(
        build(
            "REGISTER sip:example.com SIP/2.0",
            [
                "To: isbn:2983792873",
                "From: <http://www.example.com>;tag=3234233",
                "Call-ID: unksm2.daksdj@hyphenated-host.example.com",
                "CSeq: 234902 REGISTER",
                "Max-Forwards: 70",
                "Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw",
                "Contact: <name:John_Smith>",
            ],
        )
    )
    assert (msg.to.uri.scheme, msg.to.uri.opaque) == ("isbn", "2983792873")
    assert msg.from_.uri.scheme == "http" and msg.from_.tag == "3234233"
    assert msg.contacts[0].uri.opaque == "John_Smith"


def test_rfc4475_regescrt_escaped_headers_inside_angle_brackets() -> None:
    msg = request(
        build(
            "REGISTER sip:example.com SIP/2.0",
            [
                "To: sip:user@example.com",
                "From: sip:user@example.com;tag=8",
                "Max-Forwards: 70",
                "Call-ID: regescrt.k345asrl3fdbv@192.0.2.1",
                "CSeq: 14398234 REGISTER",
                "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw",
                "M: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>",
            ],
        )
    )
    assert msg.contacts[0].uri.headers == "Route=%3Csip:sip.example.com%3E"


# -- RFC 4475 §3.1.2 and §3.3: invalid or unacceptable messages ------------------------------


def _torture(start: str, headers: list[str], body: bytes = b"", cl: str | None = "auto") -> bytes:
    return build(start, headers, body, content_length=cl)


def test_rfc4475_badinv01_extraneous_header_field_separators() -> None:
    data = _torture(
        "INVITE sip:user@example.com SIP/2.0",
        [
            "To: sip:j.user@example.com",
            "From: sip:caller@example.net;tag=134161461246",
            "Max-Forwards: 7",
            "Call-ID: badinv01.0ha0isndaksdjasdf3234nas",
            "CSeq: 8 INVITE",
            "Via: SIP/2.0/UDP 192.0.2.15;;,;,,",
            'Contact: "Joe" <sip:joe@example.org>;;;;',
            "Content-Type: application/sdp",
        ],
        M.SDP,
    )
    exc = parse_error(data)
    assert exc.status_hint == 400 and isinstance(exc.message, Request)


def test_rfc4475_clerr_content_length_larger_than_message() -> None:
    data = _torture(
        "INVITE sip:user@example.com SIP/2.0",
        [
            "Max-Forwards: 80",
            "To: sip:j.user@example.com",
            "From: sip:caller@example.net;tag=93942939o2",
            "Contact: <sip:caller@hungry.example.net>",
            "Call-ID: clerr.0ha0isndaksdjweiafasdk3",
            "CSeq: 8 INVITE",
            "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523",
            "Content-Type: application/sdp",
        ],
        M.SDP,
        "9999",
    )
    exc = parse_error(data)
    assert exc.status_hint == 400 and isinstance(exc.message, Request)


def test_rfc4475_ncl_negative_content_length() -> None:
    data = _torture(
        "INVITE sip:user@example.com SIP/2.0",
        [
            "Max-Forwards: 254",
            "To: sip:j.user@example.com",
            "From: sip:caller@example.net;tag=32394234",
            "Call-ID: ncl.0ha0isndaksdj2193423r542w35",
            "CSeq: 0 INVITE",
            "Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw",
            "Contact: <sip:caller@example53.example.net>",
            "Content-Type: application/sdp",
        ],
        M.SDP,
        "-999",
    )
    assert parse_error(data).status_hint == 400


def test_rfc4475_scalar02_overlarge_values() -> None:
    data = _torture(
        "REGISTER sip:example.com SIP/2.0",
        [
            "Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3",
            "To: <sip:user@example.com>",
            "From: <sip:user@example.com>;tag=239232jh3",
            "CSeq: 36893488147419103232 REGISTER",
            "Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32",
            "Max-Forwards: 300",
            "Expires: 1" + "0" * 200,
            "Contact: <sip:user@host129.example.com>;expires=280297596632815",
        ],
    )
    exc = parse_error(data)
    assert exc.status_hint == 400 and isinstance(exc.message, Request)


def test_rfc4475_quotbal_unterminated_quoted_display_name() -> None:
    data = _torture(
        "INVITE sip:user@example.com SIP/2.0",
        [
            "To: sip:user@example.com",
            'From: "Mr. J. User <sip:j.user@example.com>;tag=93334',
            "Max-Forwards: 10",
            "Call-ID: quotbal.aksdj",
            "Contact: <sip:j.user@host.example.com:5060>",
            "CSeq: 8 INVITE",
            "Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuwfss",
        ],
    )
    exc = parse_error(data)
    assert exc.status_hint == 400 and isinstance(exc.message, Request)


def test_rfc4475_ltgtruri_request_uri_in_angle_brackets() -> None:
    data = _torture(
        "INVITE <sip:user@example.com> SIP/2.0",
        [
            "To: sip:user@example.com",
            "From: sip:caller@example.net;tag=39291",
            "Max-Forwards: 23",
            "Call-ID: ltgtruri.1@192.0.2.5",
            "CSeq: 1 INVITE",
            "Via: SIP/2.0/UDP 192.0.2.5;branch=z9hG4bKkdjuw",
        ],
    )
    exc = parse_error(data)
    assert exc.status_hint == 400 and isinstance(exc.message, Request)
    assert exc.message.uri == "<sip:user@example.com>"


def test_rfc4475_badaspec_spaces_inside_angle_brackets_are_tolerated() -> None:
    """RFC 4475 §3.1.2.14 calls rejecting "reasonable"; this parser takes the liberal route."""
    msg = request(
        _torture(
            "OPTIONS sip:user@example.org SIP/2.0",
            [
                "Via: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234",
                "Max-Forwards: 70",
                'From: "Bell, Alexander" <sip:a.g.bell@example.com>;tag=433423',
                'To: "Watson, Thomas" < sip:t.watson@example.org >',
                "Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3",
                "CSeq: 3923239 OPTIONS",
            ],
        )
    )
    assert msg.to.display_name == "Watson, Thomas"
    assert str(msg.to.uri) == "sip:t.watson@example.org"
    assert msg.from_.display_name == "Bell, Alexander"


def test_rfc4475_regbadct_contact_with_headers_needs_angle_brackets() -> None:
    """Contact is read lazily: the message parses, reading its Contact fails."""
    msg = request(
        _torture(
            "REGISTER sip:example.com SIP/2.0",
            [
                "To: sip:user@example.com",
                "From: sip:user@example.com;tag=998332",
                "Max-Forwards: 70",
                "Call-ID: regbadct.k345asrl3fdbv@10.0.0.1",
                "CSeq: 1 REGISTER",
                "Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw",
                "Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            ],
        )
    )
    with pytest.raises(ParseError):
        _ = msg.contacts


def test_rfc4475_mismatch02_unknown_method_with_cseq_mismatch() -> None:
    data = _torture(
        "NEWMETHOD sip:user@example.com SIP/2.0",
        [
            "To: sip:j.user@example.com",
            "From: sip:caller@example.net;tag=34525",
            "Max-Forwards: 6",
            "Call-ID: mismatch02.dj0234sxdfl3",
            "CSeq: 8 INVITE",
            "Contact: <sip:caller@host.example.net>",
            "Via: SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw",
        ],
    )
    exc = parse_error(data)
    assert exc.status_hint == 400
    assert isinstance(exc.message, Request) and exc.message.method == "NEWMETHOD"


def test_rfc4475_insuf_missing_required_headers() -> None:
    data = _torture(
        "INVITE sip:user@example.com SIP/2.0",
        [
            "CSeq: 193942 INVITE",
            "Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf",
            "Content-Type: application/sdp",
        ],
        M.SDP,
    )
    exc = parse_error(data)
    assert exc.status_hint == 400 and exc.reason.startswith("Missing")
    assert isinstance(exc.message, Request)


def test_rfc4475_multi01_multiple_values_in_single_value_fields() -> None:
    data = _torture(
        "INVITE sip:user@company.com SIP/2.0",
        [
            "Contact: <sip:caller@host25.example.net>",
            "Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw",
            "Max-Forwards: 70",
            "CSeq: 5 INVITE",
            "Call-ID: multi01.98asdh@192.0.2.1",
            "CSeq: 59 INVITE",
            "Call-ID: multi01.98asdh@192.0.2.2",
            "From: sip:caller@example.com;tag=3413415",
            "To: sip:user@example.com",
            "To: sip:other@example.net",
            "From: sip:caller@example.net;tag=2923420123",
            "Content-Type: application/sdp",
            "l: 154",
            "Contact: <sip:caller@host36.example.net>",
            "Max-Forwards: 5",
        ],
        M.SDP,
        None,
    ).replace(b"l: 154", f"l: {len(M.SDP)}".encode())
    exc = parse_error(data)
    assert exc.status_hint == 400 and isinstance(exc.message, Request)


# -- serialisation ---------------------------------------------------------------------------

ALL_VALID = {
    **{f"corpus{i}": data for i, data in enumerate(M.CORPUS)},
    **M.TORTURE_VALID,
}


@pytest.mark.parametrize("name", sorted(ALL_VALID))
def test_serialize_round_trip(name: str) -> None:
    msg = parse_message(ALL_VALID[name])
    wire = msg.serialize()
    again = parse_message(wire)
    assert type(again) is type(msg)
    if isinstance(msg, Request):
        assert isinstance(again, Request)
        assert (again.method, again.uri) == (msg.method, msg.uri)
    else:
        assert isinstance(msg, Response) and isinstance(again, Response)
        assert (again.status, again.reason) == (msg.status, msg.reason)
    assert again.body == msg.body
    not_cl = [f for f in msg.headers if f[0] != "Content-Length"]
    assert [f for f in again.headers if f[0] != "Content-Length"] == not_cl
    assert again.headers.get_all("Content-Length") == [str(len(msg.body))]
    assert list(again.headers)[-1] == ("Content-Length", str(len(msg.body)))
    assert again.serialize() == wire  # serialisation is a fixed point


def test_serialize_states_the_true_content_length_once() -> None:
    h = Headers([("Content-Length", "999"), ("Call-ID", "x"), ("l", "7")])
    req = Request(headers=h, method="MESSAGE", uri="sip:a@b", body=b"abc")
    assert req.serialize() == (
        b"MESSAGE sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 3\r\n\r\nabc"
    )
    resp = Response(status=486, reason="Busy Here")
    assert resp.serialize() == b"SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n\r\n"
    assert repr(resp) == "<Response 486 Busy Here>"


def test_typed_accessors_raise_parse_error_for_missing_headers() -> None:
    empty = Request(method="OPTIONS", uri="sip:a@b")
    for attr in ("call_id", "cseq", "from_", "to", "top_via"):
        with pytest.raises(ParseError):
            getattr(empty, attr)
    assert empty.vias == [] and empty.contacts == []


# -- make_response (§8.2.6) ------------------------------------------------------------------


def test_make_response_copies_vias_in_order_and_the_dialog_headers() -> None:
    invite = request(M.INVITE)
    resp = make_response(invite, 180, to_tag="uas-1")
    assert (resp.status, resp.reason, resp.version) == (180, "Ringing", "SIP/2.0")
    assert resp.headers.get_all("Via") == invite.headers.get_all("Via")
    assert [n for n, _ in resp.headers][:3] == ["Via", "Via", "Via"]
    assert resp.headers.get("From") == invite.headers.get("From")
    assert resp.headers.get("Call-ID") == invite.headers.get("Call-ID")
    assert resp.headers.get("CSeq") == "314159 INVITE"
    assert resp.headers.get("To") == '"Hotline" <sip:hotline@pbx.example.com>;tag=uas-1'
    assert resp.to.tag == "uas-1"
    # What a response does not copy.
    for name in ("Max-Forwards", "Contact", "Content-Type"):
        assert name not in resp.headers
    again = response(resp.serialize())
    assert again.headers.get_all("Via") == invite.headers.get_all("Via")


def test_make_response_to_tag_rules() -> None:
    invite = request(M.INVITE)
    assert make_response(invite, 100, to_tag="t").to.tag is None  # 100 never invents a tag
    assert make_response(invite, 101, to_tag="t").to.tag == "t"
    assert make_response(invite, 486, to_tag="t").to.tag == "t"
    assert make_response(invite, 200).to.tag is None  # no tag given, none added
    bye = request(M.BYE)
    assert make_response(bye, 200, to_tag="other").headers.get("To") == bye.headers.get("To")
    spaced = request(build(headers=replacing("To", "To: <sip:a@b> ; tag = x1")))
    assert make_response(spaced, 200, to_tag="y").to.tag == "x1"


def test_a_tag_uri_parameter_is_not_a_to_tag() -> None:
    """§8.2.6.2 concerns the To header's tag; a `tag` URI parameter inside <> is not it."""
    req = request(build(headers=replacing("To", "To: <sip:a@example.com;tag=uri-param>")))
    resp = make_response(req, 200, to_tag="local")
    assert resp.to.tag == "local"
    assert resp.to.uri.params["tag"] == "uri-param"


def test_make_response_record_route_only_for_dialog_creating_invite_answers() -> None:
    invite = request(M.INVITE)
    rr = ["<sip:p2.example.com;lr>", "<sip:p1.example.com:5070;lr>"]
    assert make_response(invite, 100).headers.get_all("Record-Route") == []
    assert make_response(invite, 180, to_tag="t").headers.get_all("Record-Route") == rr
    assert make_response(invite, 200, to_tag="t").headers.get_all("Record-Route") == rr
    assert make_response(invite, 299, to_tag="t").headers.get_all("Record-Route") == rr
    assert make_response(invite, 300, to_tag="t").headers.get_all("Record-Route") == []
    assert make_response(invite, 486, to_tag="t").headers.get_all("Record-Route") == []
    options = request(build(headers=[*BASE_HEADERS, "Record-Route: <sip:p1.example.com;lr>"]))
    assert make_response(options, 200, to_tag="t").headers.get_all("Record-Route") == []


def test_make_response_reason_extra_headers_and_body() -> None:
    req = request(M.OPTIONS)
    resp = make_response(
        req,
        200,
        "Fine",
        to_tag="t",
        extra=[("Allow", "INVITE, ACK, BYE"), ("Content-Type", "application/sdp")],
        body=M.SDP,
    )
    assert resp.reason == "Fine"
    assert list(resp.headers)[-2:] == [
        ("Allow", "INVITE, ACK, BYE"),
        ("Content-Type", "application/sdp"),
    ]
    again = response(resp.serialize())
    assert again.body == M.SDP and again.headers.get("Content-Length") == str(len(M.SDP))
    assert make_response(req, 606).reason == "Not Acceptable"
    assert make_response(req, 499).reason == "Unknown"


# -- StreamFramer (§18.3, RFC 5626 §3.5.1) ---------------------------------------------------


def test_framer_cuts_messages_on_content_length() -> None:
    framer = StreamFramer()
    out = framer.feed(M.INVITE + M.BINARY_BODY + M.OPTIONS)
    assert out == [parse_message(m, stream=True) for m in (M.INVITE, M.BINARY_BODY, M.OPTIONS)]
    assert not framer.broken


def test_framer_waits_for_the_rest() -> None:
    framer = StreamFramer()
    out: list[object] = []
    for i in range(len(M.INVITE)):
        out += framer.feed(M.INVITE[i : i + 1])
        if i < len(M.INVITE) - 1:
            assert out == []
    assert out == [parse_message(M.INVITE)]


def test_framer_keepalives() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n") == [KeepAlive()]
    assert framer.feed(b"\r\n") == []  # could become a ping
    assert framer.feed(b"\r\n") == [KeepAlive()]
    assert framer.feed(b"\r\n\r\n\r\n\r\n") == [KeepAlive(), KeepAlive()]
    # A lone CRLF (a pong, or padding) before a message is skipped.
    assert framer.feed(b"\r\n" + M.OPTIONS) == [parse_message(M.OPTIONS)]
    assert framer.feed(M.BYE + b"\r\n\r\n") == [parse_message(M.BYE), KeepAlive()]
    assert not framer.broken


def test_framer_without_content_length_breaks_the_stream() -> None:
    framer = StreamFramer()
    out = framer.feed(build(content_length=None) + M.OPTIONS)
    [err] = out
    assert isinstance(err, ParseError) and "Content-Length" in err.reason
    assert framer.broken
    assert framer.feed(M.OPTIONS) == []


@pytest.mark.parametrize("value", ["abc", "-1", "\u00b2", "\u0665", "1, 2"])
def test_framer_bad_content_length_breaks_the_stream(value: str) -> None:
    framer = StreamFramer()
    [err] = framer.feed(build(body=b"12345", content_length=value))
    assert isinstance(err, ParseError) and framer.broken


def test_framer_oversize_message() -> None:
    framer = StreamFramer(max_size=1000)
    [err] = framer.feed(build(content_length="5000"))
    assert isinstance(err, MessageTooLarge) and err.status_hint == 513
    assert framer.broken


def test_framer_oversize_header_section() -> None:
    framer = StreamFramer(max_size=1000)
    assert framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\n") == []
    [err] = framer.feed(b"X-Junk: " + b"j" * 1200)
    assert isinstance(err, MessageTooLarge) and framer.broken


def test_framer_reports_a_bad_but_framed_message_and_stays_in_sync() -> None:
    framer = StreamFramer()
    bad = build(headers=without("Call-ID"))
    out = framer.feed(bad + M.OPTIONS)
    assert len(out) == 2
    assert isinstance(out[0], ParseError) and isinstance(out[0].message, Request)
    assert out[1] == parse_message(M.OPTIONS)
    assert not framer.broken


# -- property tests --------------------------------------------------------------------------

FUZZ_CORPUS = [*M.CORPUS, *M.TORTURE_VALID.values(), M.DBLREQ]
INTERESTING = [
    b"\r\n", b"\n", b"\r", b"\r\n ", b"\r\n\r\n", b"\x00", b"\xff", b"\xc3", b":", b";", b",",
    b"=", b'"', b"\\", b"<", b">", b"@", b"%", b" ", b"\t", b"/", b"?", b"[", b"]", b"*",
    b"\xc2\xb2", b"\xd9\xa5", b"\xe2\x80\xa8", b"9999999999", b"-1", b"0",
]  # fmt: skip


def _check_total(data: bytes) -> None:
    """The h11 invariant: a Message or a ParseError, nothing else."""
    try:
        msg = parse_message(data)
    except ParseError as exc:
        assert isinstance(exc.status_hint, int)
        assert exc.message is None or isinstance(exc.message, Message)
        return
    assert isinstance(msg, Request | Response)
    # Whatever parsed can be written out, and what is written parses back the same.
    wire = msg.serialize()
    again = parse_message(wire)
    assert again.serialize() == wire
    assert again.body == msg.body


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    _check_total(data)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([b"INVITE sip:a@b SIP/2.0\r\n", b"SIP/2.0 200 OK\r\n", b""]), st.binary())
def test_arbitrary_headers_after_a_start_line(start: bytes, rest: bytes) -> None:
    _check_total(start + rest)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(FUZZ_CORPUS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(
            st.sampled_from(
                ["flip", "insert", "delete", "truncate", "dup", "lf", "splice", "value"]
            )
        )
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "value":
            # Replace one header's value with something awkward (Content-Length too).
            head, sep, body = bytes(data).partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            i = draw(st.integers(0, len(lines) - 1))
            name = lines[i].partition(b":")[0]
            lines[i] = name + b": " + draw(st.sampled_from(INTERESTING))
            data = bytearray(b"\r\n".join(lines) + sep + body)
        elif op == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from(INTERESTING))
        elif op == "splice":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[pos:]
        elif op == "dup":
            lines = bytes(data).split(b"\r\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            data = bytearray(b"\r\n".join(lines))
        else:
            count = draw(st.integers(1, 60))
            data = bytearray(bytes(data).replace(b"\r\n", b"\n", count))
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_messages_parse_or_raise_parse_error(data: bytes) -> None:
    _check_total(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(mutated(), st.binary(max_size=200)), min_size=1, max_size=4))
def test_framer_never_raises(chunks: list[bytes]) -> None:
    framer = StreamFramer(max_size=4000)
    for chunk in chunks:
        for item in framer.feed(chunk):
            assert isinstance(item, Message | KeepAlive | ParseError)


TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
WORD_CHARS = TOKEN_CHARS + '()<>:\\"/[]?{}'
SAFE_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\ufeff\x85"
    ),
    max_size=30,
).map(str.strip)

tokens = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=12)
hosts = st.from_regex(r"[a-z][a-z0-9\-]{0,8}[a-z0-9](\.[a-z]{2,5}){0,2}", fullmatch=True)
sip_uris = st.builds(
    lambda user, host, port, lr: str(
        SipURI(user=user, host=host, port=port, params=Params([("lr", None)] if lr else []))
    ),
    st.one_of(st.none(), st.from_regex(r"[a-zA-Z0-9+_.!~*'()&=$,;?/\-]{1,12}", fullmatch=True)),
    hosts,
    st.one_of(st.none(), st.integers(1, 65535)),
    st.booleans(),
)
request_uris = st.one_of(sip_uris, st.from_regex(r"tel:\+[0-9]{4,12}", fullmatch=True))
name_addrs = st.builds(
    lambda name, uri, tag: (
        (f"{quote(name)} " if name else "") + f"<{uri}>" + (f";tag={tag}" if tag else "")
    ),
    st.one_of(st.just(""), SAFE_TEXT, st.text(alphabet='"\\ ab', max_size=6)),
    sip_uris,
    st.one_of(st.none(), tokens),
)
extra_headers = st.lists(
    st.tuples(tokens.map(lambda t: "X-" + t), SAFE_TEXT),
    max_size=6,
)


@st.composite
def valid_requests(draw: st.DrawFn) -> Request:
    method = draw(tokens)
    fields = [
        ("Via", f"SIP/2.0/{draw(st.sampled_from(['UDP', 'TCP', 'TLS']))} {draw(hosts)}"
                f":{draw(st.integers(1, 65535))};branch=z9hG4bK{draw(tokens)}"),
        ("Max-Forwards", str(draw(st.integers(0, 255)))),
        ("From", draw(name_addrs)),
        ("To", draw(name_addrs)),
        ("Call-ID", draw(st.text(alphabet=WORD_CHARS, min_size=1, max_size=20))),
        ("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"),
        *draw(extra_headers),
    ]  # fmt: skip
    fields = draw(st.permutations(fields))
    return Request(
        headers=Headers(fields),
        method=method,
        uri=draw(request_uris),
        body=draw(st.binary(max_size=300)),
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_requests())
def test_generated_requests_round_trip(req: Request) -> None:
    wire = req.serialize()
    again = request(wire)
    assert (again.method, again.uri, again.version, again.body) == (
        req.method,
        req.uri,
        "SIP/2.0",
        req.body,
    )
    assert [f for f in again.headers if f[0] != "Content-Length"] == list(req.headers)
    assert again.headers.get("Content-Length") == str(len(req.body))
    assert again.from_ == NameAddr.parse(req.headers.get("From") or "")
    assert again.top_via == Via.parse(req.headers.get("Via") or "")
    assert again.serialize() == wire


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([*M.CORPUS, M.INTMETH, M.WSINV]), st.integers(0, 2)),
        min_size=1,
        max_size=5,
    ),
    st.lists(st.integers(0, 10_000), max_size=12),
)
def test_framer_returns_the_stream_in_order_whatever_the_cuts(
    items: list[tuple[bytes, int]], cuts: list[int]
) -> None:
    stream = b""
    expected: list[object] = []
    for data, pings in items:
        stream += data + b"\r\n\r\n" * pings
        expected += [parse_message(data, stream=True)] + [KeepAlive()] * pings
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    framer = StreamFramer()
    out: list[object] = []
    for a, b in itertools.pairwise(points):
        out += framer.feed(stream[a:b])
    assert out == expected
    assert not framer.broken


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(M.CORPUS), st.integers(1, 50))
def test_framer_oversize_stream(data: bytes, step: int) -> None:
    framer = StreamFramer(max_size=len(data) - 1)
    out: list[object] = []
    for i in range(0, len(data), step):
        out += framer.feed(data[i : i + step])
    assert len(out) == 1 and isinstance(out[0], MessageTooLarge)
    assert framer.broken
