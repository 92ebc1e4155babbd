"""Header values (RFC 3261 §7.3, §19.1, §20, §25; RFC 3581) and the `Headers` multi-map."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.sip.errors import ParseError
from callcenter.sip.headers import (
    CSeq,
    NameAddr,
    Params,
    SipURI,
    Via,
    quote,
    split_comma,
    unquote,
)
from callcenter.sip.message import _COMPACT, Headers, canonical_name

# -- quoted strings (§25.1 quoted-string, quoted-pair) ----------------------------------------


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        ('""', ""),
        ('"Alice"', "Alice"),
        ('"say \\"hi\\""', 'say "hi"'),
        ('"back\\\\slash"', "back\\slash"),
        ('"\\a\\b"', "ab"),  # any escaped character stands for itself
        ('"a, b; c <d>"', "a, b; c <d>"),
        ('"работающий"', "работающий"),
    ],
)
def test_unquote(wire: str, value: str) -> None:
    assert unquote(wire) == value


@pytest.mark.parametrize(
    "bad",
    ["", '"', "Alice", '"Alice', 'Alice"', '"a"b"', '"ends in \\"', "'single'"],
)
def test_unquote_rejects_what_is_not_a_quoted_string(bad: str) -> None:
    with pytest.raises(ParseError):
        unquote(bad)


def test_quote_escapes_backslash_and_dquote_only() -> None:
    assert quote("plain") == '"plain"'
    assert quote('a "b" \\c') == '"a \\"b\\" \\\\c"'
    assert quote("") == '""'


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_quote_then_unquote_is_the_identity(text: str) -> None:
    assert unquote(quote(text)) == text


# -- comma lists (§7.3.1) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "items"),
    [
        ("a, b,c", ["a", "b", "c"]),
        ("  one  ", ["one"]),
        ("", []),
        ("a,,b, ,", ["a", "b"]),  # empty #elements are dropped
        ('"Doe, John" <sip:j@x>, <sip:k@y>', ['"Doe, John" <sip:j@x>', "<sip:k@y>"]),
        ('"a \\", b", c', ['"a \\", b"', "c"]),  # an escaped quote does not end the string
        ("<sip:a@x?h=1,2>;q=1, <sip:b@y>", ["<sip:a@x?h=1,2>;q=1", "<sip:b@y>"]),
        ("x > y, z", ["x > y", "z"]),  # a stray '>' does not unbalance anything
    ],
)
def test_split_comma(value: str, items: list[str]) -> None:
    assert split_comma(value) == items


def test_split_comma_rejects_an_unterminated_quoted_string() -> None:
    with pytest.raises(ParseError):
        split_comma('"Doe, John <sip:j@x>, <sip:k@y>')


# -- parameters (§19.1.4, §7.3.1: names compare case-insensitively) --------------------------


def test_params_keep_order_case_and_flags() -> None:
    p = Params.parse(';Transport=TCP;lr;Q=0.5;x="quoted; value"')
    assert list(p) == ["Transport", "lr", "Q", "x"]
    assert p["transport"] == "TCP" and p["TRANSPORT"] == "TCP"
    assert p["lr"] is None and "LR" in p
    assert p.get("missing") is None
    assert p["x"] == '"quoted; value"'  # kept as written, quotes and all
    assert str(p) == ';Transport=TCP;lr;Q=0.5;x="quoted; value"'
    assert Params.parse(str(p)) == p


def test_params_leading_semicolon_is_optional_and_whitespace_is_lws() -> None:
    assert Params.parse("a=1 ; b") == Params.parse(";a=1;b")
    assert Params.parse(" ;  tag  =  xyz ")["tag"] == "xyz"
    assert len(Params.parse("")) == 0


def test_params_equality_ignores_name_case_not_value_case() -> None:
    assert Params.parse(";LR;Tag=a") == Params.parse(";lr;tag=a")
    assert Params.parse(";tag=A") != Params.parse(";tag=a")
    assert hash(Params.parse(";LR")) == hash(Params.parse(";lr"))


def test_params_set_replaces_in_place_and_remove_is_case_insensitive() -> None:
    p = Params.parse(";a=1;B=2;c")
    p.set("b", "3")
    p.set("d", None)
    assert str(p) == ";a=1;B=3;c;d"
    p.remove("A")
    assert str(p) == ";B=3;c;d"
    copy = p.copy()
    copy.set("c", "x")
    assert p["c"] is None


@pytest.mark.parametrize(
    "bad",
    [";;", ";a;;b", ";a b=1", ";=1", ";a=", ";a=b c", ';a="open', ';a=b"c', ";a@b=1"],
)
def test_params_errors(bad: str) -> None:
    with pytest.raises(ParseError):
        Params.parse(bad)


# -- SIP URIs (§19.1, §25.1) -----------------------------------------------------------------


def test_sip_uri_with_everything() -> None:
    u = SipURI.parse("sip:alice:secret@Atlanta.example.com:5070;transport=tcp;lr?subject=x&b=2")
    assert (u.scheme, u.user, u.password) == ("sip", "alice", "secret")
    assert (u.host, u.port, u.hostport) == ("Atlanta.example.com", 5070, "Atlanta.example.com:5070")
    assert u.params["transport"] == "tcp" and u.params["lr"] is None
    assert u.headers == "subject=x&b=2"
    assert u.opaque is None
    assert str(u) == "sip:alice:secret@Atlanta.example.com:5070;transport=tcp;lr?subject=x&b=2"


def test_sip_uri_password_is_kept_out_of_repr() -> None:
    assert "secret" not in repr(SipURI.parse("sip:alice:secret@example.com"))


def test_sips_and_scheme_case() -> None:
    u = SipURI.parse("SIPS:bob@example.com")
    assert u.scheme == "sips" and u.user == "bob" and u.port is None
    assert str(u) == "sips:bob@example.com"


def test_sip_uri_host_only_and_empty_password() -> None:
    u = SipURI.parse("sip:example.com")
    assert (u.user, u.host, u.port, len(u.params), u.headers) == (
        None,
        "example.com",
        None,
        0,
        None,
    )
    u = SipURI.parse("sip:alice:@example.com")
    assert (u.user, u.password) == ("alice", "")


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("sip:[::1]:5070", "[::1]", 5070),
        ("sip:user@[2001:db8::9:1];transport=udp", "[2001:db8::9:1]", None),
        ("sip:[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]", None),
        ("sip:192.0.2.4:65535", "192.0.2.4", 65535),
        ("sip:host.example.com.", "host.example.com.", None),
    ],
)
def test_sip_uri_hosts(text: str, host: str, port: int | None) -> None:
    u = SipURI.parse(text)
    assert (u.host, u.port) == (host, port)
    assert str(u) == text


def test_sip_uri_user_may_hold_user_unreserved_characters() -> None:
    """§25.1 user-unreserved includes ";" "?" "/" "&" "=" "+" "$" ",": all user part (RFC 4475 semiuri)."""
    u = SipURI.parse("sip:user;par=u%40example.net@example.com")
    assert (u.user, u.host, len(u.params)) == ("user;par=u%40example.net", "example.com", 0)
    u = SipURI.parse("sip:+1-212-555-1212:1234@gateway.com;user=phone")
    assert (u.user, u.password, u.host) == ("+1-212-555-1212", "1234", "gateway.com")
    assert u.params["user"] == "phone"
    u = SipURI.parse("sip:a&b=c+d$e,f/g?h@example.com")
    assert (u.user, u.host, u.headers) == ("a&b=c+d$e,f/g?h", "example.com", None)


def test_escapes_are_kept_as_written() -> None:
    u = SipURI.parse("sip:%75se%72@example.com;n%61me=v%61lue")
    assert u.user == "%75se%72" and u.params["n%61me"] == "v%61lue"


@pytest.mark.parametrize(
    ("text", "scheme", "opaque"),
    [
        ("tel:+1-201-555-0123", "tel", "+1-201-555-0123"),
        ("TEL:+1-201-555-0123;ext=7", "tel", "+1-201-555-0123;ext=7"),
        ("urn:service:sos", "urn", "service:sos"),
        ("mailto:agent@example.com", "mailto", "agent@example.com"),
        ("http://www.example.com/x?y", "http", "//www.example.com/x?y"),
        ("soap.beep://192.0.2.103:3002", "soap.beep", "//192.0.2.103:3002"),
    ],
)
def test_other_absolute_uris_are_opaque(text: str, scheme: str, opaque: str) -> None:
    u = SipURI.parse(text)
    assert (u.scheme, u.opaque) == (scheme, opaque)
    assert (u.user, u.host, u.port) == (None, "", None)
    assert str(u) == f"{scheme}:{opaque}"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "sip:",
        "sips:",
        "sip:user@",
        "sip:@example.com",
        "sip:host:",
        "sip:host:0",
        "sip:host:65536",
        "sip:host:123456",
        "sip:ho st",
        "sip:a b@example.com",
        "sip:-host",
        "sip:[::1",
        "sip:user@host;a b",
        "sip:user@host;;x",
        "<sip:user@host>",
        "user@host",
        "1tel:123",
        "tel:",
        "tel: 123",
    ],
)
def test_bad_uris(bad: str) -> None:
    with pytest.raises(ParseError):
        SipURI.parse(bad)


def test_uri_copy_is_deep_for_params() -> None:
    u = SipURI.parse("sip:a@b;lr")
    c = u.copy()
    c.params.set("maddr", "x")
    c.headers = "h=1"
    assert str(u) == "sip:a@b;lr" and str(c) == "sip:a@b;lr;maddr=x?h=1"


@settings(max_examples=150, deadline=None)
@given(
    user=st.one_of(st.none(), st.from_regex(r"[a-z0-9+.\-]{1,12}", fullmatch=True)),
    host=st.from_regex(
        r"[a-z]([a-z0-9\-]{0,9}[a-z0-9])?(\.[a-z][a-z0-9]{0,6}){0,3}", fullmatch=True
    ),
    port=st.one_of(st.none(), st.integers(1, 65535)),
    params=st.lists(
        st.tuples(
            st.from_regex(r"[a-z][a-z0-9\-]{0,8}", fullmatch=True),
            st.one_of(st.none(), st.from_regex(r"[a-zA-Z0-9.\-]{1,8}", fullmatch=True)),
        ),
        max_size=4,
        unique_by=lambda kv: kv[0],
    ),
)
def test_sip_uri_round_trips(
    user: str | None, host: str, port: int | None, params: list[tuple[str, str | None]]
) -> None:
    uri = SipURI(user=user, host=host, port=port, params=Params(params))
    again = SipURI.parse(str(uri))
    assert again == uri
    assert str(again) == str(uri)


# -- name-addr and addr-spec (§20.10, §20.20, §20.39) ----------------------------------------


def test_name_addr_with_quoted_display_name_and_escapes() -> None:
    na = NameAddr.parse('"J Rosenberg \\\\\\"" <sip:jdrosen@example.com>;tag=98asjd8;x')
    assert na.display_name == 'J Rosenberg \\"'
    assert str(na.uri) == "sip:jdrosen@example.com"
    assert na.tag == "98asjd8" and na.params["x"] is None
    again = NameAddr.parse(str(na))
    assert again == na


def test_name_addr_with_token_display_name() -> None:
    na = NameAddr.parse("Bob  Smith <sip:bob@example.com>")
    assert na.display_name == "Bob  Smith"
    assert na.tag is None
    assert str(na) == '"Bob  Smith" <sip:bob@example.com>'
    assert NameAddr.parse("caller<sip:c@example.com>;tag=323").display_name == "caller"
    # An empty quoted display name is no display name on output.
    assert str(NameAddr.parse('"" <sip:x@y>')) == "<sip:x@y>"


def test_uri_parameters_inside_angle_brackets_belong_to_the_uri() -> None:
    na = NameAddr.parse("<sip:alice@example.com;transport=tcp>;tag=a1;expires=60")
    assert na.uri.params["transport"] == "tcp" and "tag" not in na.uri.params
    assert na.tag == "a1" and na.params["expires"] == "60"
    assert str(na) == "<sip:alice@example.com;transport=tcp>;tag=a1;expires=60"


def test_addr_spec_parameters_belong_to_the_header() -> None:
    """§20.10: in `sip:u@h;tag=x` without <> the parameters are header parameters."""
    na = NameAddr.parse("sip:alice@example.com;tag=88sja8x ;  q = 0.7")
    assert str(na.uri) == "sip:alice@example.com"
    assert len(na.uri.params) == 0
    assert na.tag == "88sja8x" and na.params["q"] == "0.7"
    assert na.display_name is None
    # Written back with <>, so the parameters stay header parameters.
    assert str(na) == "<sip:alice@example.com>;tag=88sja8x;q=0.7"
    assert NameAddr.parse(str(na)) == na


def test_addr_spec_with_other_schemes() -> None:
    assert NameAddr.parse("isbn:2983792873").uri.opaque == "2983792873"
    na = NameAddr.parse("<http://www.example.com>;tag=3234233")
    assert (na.uri.scheme, na.tag) == ("http", "3234233")
    assert NameAddr.parse("tel:+12125551212;tag=t").uri.opaque == "+12125551212"


def test_wildcard_contact() -> None:
    na = NameAddr.parse("  *  ")
    assert na.wildcard and str(na) == "*"
    assert not NameAddr.parse("<sip:x@y>").wildcard


def test_tag_without_value_is_refused() -> None:
    """tag-param = "tag" EQUAL token (§25.1); read as no tag, a bare `;tag` let
    a response's To carry two tags, the first empty (tests/calls/test_switchboard.py)."""
    for text in ("<sip:x@y>;tag", "<sip:x@y>;TAG;x=1", "sip:x@y;tag"):
        with pytest.raises(ParseError, match="parameter 'tag'"):
            NameAddr.parse(text)
    assert NameAddr.parse("<sip:x@y;tag>").tag is None  # a URI parameter is not the tag


def test_name_addr_copy_is_independent() -> None:
    na = NameAddr.parse('"A" <sip:a@x;lr>;tag=1')
    c = na.copy()
    c.params.remove("tag")
    c.uri.params.remove("lr")
    assert na.tag == "1" and "lr" in na.uri.params


@pytest.mark.parametrize(
    "bad",
    [
        "",
        '"Bell, Alexander <sip:a.g.bell@example.com>;tag=43',  # quotbal: unterminated quote
        '"Watson" sip:t.watson@example.org',  # quoted display name without <>
        "Bell, Alexander <sip:a.g.bell@example.com>",  # baddn: ',' is not a token char
        "<sip:a@example.com",
        "<sip:a@example.com> junk",
        "<sip:a@example.com>;tag=a;;",
        "<sip:a@example.com>;tag=a;",  # a trailing ';' leaves an empty generic-param
        "sip:user@example.com?Route=%3Csip:x%3E",  # regbadct: '?' needs <>
        "sip:a@x,sip:b@y",
        "<no-scheme>",
        "<>",
        "**",
    ],
)
def test_name_addr_errors(bad: str) -> None:
    with pytest.raises(ParseError):
        NameAddr.parse(bad)


def test_extraneous_separators_after_a_name_addr() -> None:
    with pytest.raises(ParseError):
        NameAddr.parse('"Joe" <sip:joe@example.org>;;;;')  # RFC 4475 badinv01


# -- Via (§20.42, §18.2.1, RFC 3581) -----------------------------------------------------------


def test_via_with_branch_received_and_rport_without_value() -> None:
    v = Via.parse("SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK776asdhds;received=192.0.2.9;rport")
    assert (v.protocol, v.transport, v.host, v.port) == ("SIP/2.0", "UDP", "192.0.2.1", 5070)
    assert v.branch == "z9hG4bK776asdhds"
    assert v.params["received"] == "192.0.2.9"
    assert "rport" in v.params and v.params["rport"] is None
    assert v.sent_by == ("192.0.2.1", 5070)
    assert str(v) == "SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK776asdhds;received=192.0.2.9;rport"


def test_via_rport_with_value_and_no_port() -> None:
    v = Via.parse("SIP/2.0/TCP Client.Example.COM;rport=9988;branch=z9hG4bKx")
    assert v.params["rport"] == "9988" and v.port is None
    assert v.sent_by == ("client.example.com", None)
    assert v.transport == "TCP"


def test_via_ipv6_sent_by() -> None:
    v = Via.parse("SIP/2.0/TLS [2001:db8::9:1]:5061;branch=z9hG4bKv6;received=[2001:db8::9:255]")
    assert (v.host, v.port, v.transport) == ("[2001:db8::9:1]", 5061, "TLS")
    assert v.params["received"] == "[2001:db8::9:255]"
    assert Via.parse(str(v)) == v


def test_via_allows_lws_around_slashes_and_before_params() -> None:
    v = Via.parse(
        "  SIP  /   2.0\t/ udp   spindle.example.com  :  5060 ;  branch  =  z9hG4bK9ikj8 "
    )
    assert (v.protocol, v.transport, v.host, v.port) == (
        "SIP/2.0",
        "UDP",
        "spindle.example.com",
        5060,
    )
    assert v.branch == "z9hG4bK9ikj8"
    assert str(v) == "SIP/2.0/UDP spindle.example.com:5060;branch=z9hG4bK9ikj8"


def test_via_keeps_other_transports_and_versions() -> None:
    assert Via.parse("SIP/2.0/SCTP t2.example.com;branch=b").transport == "SCTP"
    assert Via.parse("sip/2.0/UNKNOWN t4.example.com").transport == "UNKNOWN"
    assert Via.parse("SIP/3.0/UDP h").protocol == "SIP/3.0"
    assert Via.parse("SIP/2.0/UDP h").branch is None


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "SIP/2.0/UDP",
        "SIP/2.0 192.0.2.1",
        "SIP/2.0/UDP192.0.2.1",
        "HTTP/1.1/TCP example.com",
        "SIP/2.0/UDP 192.0.2.1:0",
        "SIP/2.0/UDP 192.0.2.1:70000",
        "SIP/2.0/UDP 192.0.2.1 junk",
        "SIP/2.0/UDP 192.0.2.15;;",  # RFC 4475 badinv01
        "SIP/2.0/UDP host;branch=a b",
        "SIP/2.0/UDP [::1;branch=x",
    ],
)
def test_via_errors(bad: str) -> None:
    with pytest.raises(ParseError):
        Via.parse(bad)


# -- CSeq (§20.16, §8.1.1.5: the number is below 2**31) ---------------------------------------


def test_cseq() -> None:
    assert CSeq.parse("4711 INVITE") == CSeq(4711, "INVITE")
    assert CSeq.parse("  0009\t  INVITE ") == CSeq(9, "INVITE")
    assert CSeq.parse("0 ACK") == CSeq(0, "ACK")
    assert CSeq.parse("2147483647 BYE").seq == 2**31 - 1
    assert str(CSeq(1, "RE%47IST%45R")) == "1 RE%47IST%45R"
    assert CSeq.parse("1 invite").method == "invite"  # methods are case-sensitive


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "INVITE",
        "1",
        "1INVITE",
        "-1 INVITE",
        "1.5 INVITE",
        "2147483648 INVITE",
        "9999999999 INVITE",
        "36893488147419103232 INVITE",  # RFC 4475 scalar02
        "1 INVITE BYE",
        "1 IN<VITE",
        "\u0661 INVITE",  # ARABIC-INDIC DIGIT ONE is not an ABNF DIGIT
    ],
)
def test_cseq_errors(bad: str) -> None:
    with pytest.raises(ParseError):
        CSeq.parse(bad)


# -- header names (§7.3.1 case-insensitive, §7.3.3 compact forms) -----------------------------


@pytest.mark.parametrize(("compact", "full"), sorted(_COMPACT.items()))
def test_every_compact_form_is_the_long_name(compact: str, full: str) -> None:
    h = Headers([(compact.upper(), "x1")])
    h.add(compact, "x2")
    assert list(h) == [(full, "x1"), (full, "x2")]
    assert h.get(full) == "x1" and h.get(full.lower()) == "x1" and h.get(compact) == "x1"
    assert full in h and compact.upper() in h


def test_the_rfc_3261_compact_forms() -> None:
    rfc = {"i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length"}
    rfc |= {"c": "Content-Type", "f": "From", "s": "Subject", "k": "Supported", "t": "To"}
    rfc |= {"v": "Via"}
    assert {k: canonical_name(k) for k in rfc} == rfc


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("call-id", "Call-ID"),
        ("CALL-ID", "Call-ID"),
        ("cseq", "CSeq"),
        ("www-authenticate", "WWW-Authenticate"),
        ("max-forwards", "Max-Forwards"),
        ("RECORD-route", "Record-Route"),
        ("x-foo-BAR", "X-Foo-Bar"),
        ("p-asserted-identity", "P-Asserted-Identity"),
        ("rseq", "RSeq"),
        ("NewFangledHeader", "Newfangledheader"),
    ],
)
def test_canonical_name(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


# -- Headers multi-map -----------------------------------------------------------------------


def _h() -> Headers:
    return Headers(
        [
            ("Via", "SIP/2.0/UDP a;branch=1, SIP/2.0/UDP b;branch=2"),
            ("To", "<sip:x@y>"),
            ("via", "SIP/2.0/UDP c;branch=3"),
            ("Authorization", 'Digest username="bob", realm="x", nonce="n"'),
            ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
            ("Route", "<sip:p1;lr>,<sip:p2;lr>"),
        ]
    )


def test_get_returns_the_first_field_as_written() -> None:
    h = _h()
    assert h.get("VIA") == "SIP/2.0/UDP a;branch=1, SIP/2.0/UDP b;branch=2"
    assert h.get("v") == h.get("Via")
    assert h.get("Contact") is None
    assert "Contact" not in h and "to" in h and 42 not in h


def test_get_all_splits_list_headers_across_fields_in_order() -> None:
    h = _h()
    assert h.get_all("v") == [
        "SIP/2.0/UDP a;branch=1",
        "SIP/2.0/UDP b;branch=2",
        "SIP/2.0/UDP c;branch=3",
    ]
    assert h.get_all("route") == ["<sip:p1;lr>", "<sip:p2;lr>"]
    assert h.get_all("Contact") == []


def test_headers_that_are_never_split() -> None:
    h = _h()
    assert h.get_all("Authorization") == ['Digest username="bob", realm="x", nonce="n"']
    assert h.get_all("date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]
    h.add("Subject", "hello, world")
    h.add("Subject", "second")
    assert h.get_all("s") == ["hello, world", "second"]  # not a list header: fields only


def test_add_appends_after_everything() -> None:
    h = _h()
    h.add("v", "SIP/2.0/UDP d")
    assert list(h)[-1] == ("Via", "SIP/2.0/UDP d")
    assert h.get_all("Via")[-1] == "SIP/2.0/UDP d"
    assert len(h) == 7


def test_prepend_goes_before_the_first_field_of_that_name() -> None:
    h = _h()
    h.prepend("via", "SIP/2.0/UDP top;branch=0")
    assert next(iter(h)) == ("Via", "SIP/2.0/UDP top;branch=0")
    h.prepend("Route", "<sip:p0;lr>")
    assert [n for n, _ in h] == [
        "Via",
        "Via",
        "To",
        "Via",
        "Authorization",
        "Date",
        "Route",
        "Route",
    ]
    assert h.get_all("Route") == ["<sip:p0;lr>", "<sip:p1;lr>", "<sip:p2;lr>"]
    # With no field of that name, prepend appends.
    h.prepend("Contact", "<sip:me@here>")
    assert list(h)[-1] == ("Contact", "<sip:me@here>")


def test_set_replaces_all_fields_at_the_first_ones_place() -> None:
    h = _h()
    h.set("VIA", "SIP/2.0/TCP only")
    assert [n for n, _ in h] == ["Via", "To", "Authorization", "Date", "Route"]
    assert h.get_all("Via") == ["SIP/2.0/TCP only"]
    h.set("Max-Forwards", "70")
    assert list(h)[-1] == ("Max-Forwards", "70")


def test_remove_drops_every_field_of_that_name() -> None:
    h = _h()
    h.remove("v")
    assert h.get_all("Via") == [] and len(h) == 4
    h.remove("Nope")
    assert len(h) == 4


def test_pop_first_pops_one_list_element() -> None:
    h = _h()
    assert h.pop_first("Via") == "SIP/2.0/UDP a;branch=1"
    assert h.get("Via") == "SIP/2.0/UDP b;branch=2"
    assert h.pop_first("Via") == "SIP/2.0/UDP b;branch=2"
    assert [n for n, _ in h][:2] == ["To", "Via"]  # the emptied field is gone
    assert h.pop_first("Via") == "SIP/2.0/UDP c;branch=3"
    assert h.pop_first("Via") is None
    assert "Via" not in h
    assert h.pop_first("Contact") is None


def test_replace_first_changes_one_element_and_keeps_what_was_parsed_elsewhere() -> None:
    h = _h()
    to = h.memo("To", lambda: NameAddr.parse(h.get("To") or ""))
    h.memo("Via", lambda: "stale")
    h.replace_first("Via", "SIP/2.0/UDP a;branch=1;received=10.0.0.1")
    assert h.get_all("Via") == [
        "SIP/2.0/UDP a;branch=1;received=10.0.0.1",
        "SIP/2.0/UDP b;branch=2",
        "SIP/2.0/UDP c;branch=3",
    ]
    assert [n for n, _ in h][:3] == ["Via", "To", "Via"]  # fields stay where they were
    assert h.memo("To", lambda: NameAddr.parse("<sip:other@z>")) is to  # kept
    assert h.memo("Via", lambda: "fresh") == "fresh"  # forgotten
    h.replace_first("Via", "SIP/2.0/UDP d;branch=4", parsed="given")
    assert h.memo("Via", lambda: "fresh") == "given"
    empty = Headers()
    empty.replace_first("Via", "SIP/2.0/UDP e;branch=5")
    assert empty.get_all("Via") == ["SIP/2.0/UDP e;branch=5"]


def test_headers_equality_copy_and_construction_canonicalise() -> None:
    h = Headers([("i", "x"), ("CONTENT-LENGTH", "0")])
    assert list(h) == [("Call-ID", "x"), ("Content-Length", "0")]
    assert h == Headers([("Call-ID", "x"), ("Content-Length", "0")])
    assert h != Headers([("Content-Length", "0"), ("Call-ID", "x")])  # order matters
    c = h.copy()
    c.add("To", "<sip:a@b>")
    assert len(h) == 2 and len(c) == 3
    assert h != "not headers"
