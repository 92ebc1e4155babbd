"""Sample SIP messages shared by the parser, header and dialog tests.

Messages are written with LF line ends for readability and turned into wire
bytes (CRLF) by `wire`, which also fills `@CL@` with the body's length. The
RFC 4475 torture messages are adapted, not copied: host names and bodies are
shortened, and where our parser deliberately departs from the RFC the comment
above the message says so.
"""

from __future__ import annotations

__all__ = [
    "BINARY_BODY",
    "BYE",
    "CORPUS",
    "INVITE",
    "OK_200",
    "OPTIONS",
    "REGISTER_COMPACT",
    "RINGING",
    "SDP",
    "wire",
]


def wire(text: str, body: bytes = b"") -> bytes:
    """Readable message text (LF line ends, blank line included) to wire bytes."""
    head = text.replace("@CL@", str(len(body)))
    return head.replace("\n", "\r\n").encode("utf-8") + body


SDP = (
    b"v=0\r\n"
    b"o=caller 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0 8\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
)

# An INVITE from a caller through two record-routing proxies (p1 nearest the caller).
INVITE = wire(
    """\
INVITE sip:hotline@pbx.example.com SIP/2.0
Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bKp2-1
Via: SIP/2.0/UDP p1.example.com:5070;branch=z9hG4bKp1-1, SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKuac-1;rport
Max-Forwards: 68
To: "Hotline" <sip:hotline@pbx.example.com>
From: "Caller" <sip:13812345678@example.com>;tag=1928301774
Call-ID: a84b4c76e66710@192.0.2.10
CSeq: 314159 INVITE
Contact: <sip:13812345678@192.0.2.10:5060;transport=udp>
Record-Route: <sip:p2.example.com;lr>
Record-Route: <sip:p1.example.com:5070;lr>
Content-Type: application/sdp
Content-Length: @CL@

""",
    SDP,
)

OPTIONS = wire(
    """\
OPTIONS sip:pbx.example.com SIP/2.0
Via: SIP/2.0/TCP [2001:db8::10]:5061;branch=z9hG4bKopt-7;received=2001:db8::10;rport=5061
Max-Forwards: 70
To: <sip:pbx.example.com>
From: <sip:monitor@example.com>;tag=mon-1
Call-ID: opt-7
CSeq: 7 OPTIONS
Accept: application/sdp
Content-Length: 0

"""
)

# Every header in compact form (§7.3.3), mixed case names, an addr-spec To/From.
REGISTER_COMPACT = wire(
    """\
REGISTER sip:registrar.example.com SIP/2.0
v: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bKreg-1
Max-Forwards: 70
T: sip:agent-7@example.com
F: sip:agent-7@example.com;tag=reg-a
I: reg-call-1@192.0.2.20
CSeq: 2 REGISTER
m: <sip:agent-7@192.0.2.20:5062>;expires=3600, <sip:agent-7@198.51.100.1>;q=0.5
k: path, outbound
l: 0

"""
)

BYE = wire(
    """\
BYE sip:13812345678@192.0.2.10:5060 SIP/2.0
Via: SIP/2.0/UDP pbx.example.com;branch=z9hG4bKbye-1
Max-Forwards: 70
Route: <sip:p1.example.com:5070;lr>, <sip:p2.example.com;lr>
From: "Hotline" <sip:hotline@pbx.example.com>;tag=uas-1
To: "Caller" <sip:13812345678@example.com>;tag=1928301774
Call-ID: a84b4c76e66710@192.0.2.10
CSeq: 1 BYE
Content-Length: 0

"""
)

RINGING = wire(
    """\
SIP/2.0 180 Ringing
Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKuac-1;received=192.0.2.10;rport=5060
To: "Hotline" <sip:hotline@pbx.example.com>;tag=uas-1
From: "Caller" <sip:13812345678@example.com>;tag=1928301774
Call-ID: a84b4c76e66710@192.0.2.10
CSeq: 314159 INVITE
Contact: <sip:hotline@pbx.example.com>
Content-Length: 0

"""
)

OK_200 = wire(
    """\
SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKuac-1;received=192.0.2.10;rport=5060
Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com:5070;lr>
To: "Hotline" <sip:hotline@pbx.example.com>;tag=uas-1
From: "Caller" <sip:13812345678@example.com>;tag=1928301774
Call-ID: a84b4c76e66710@192.0.2.10
CSeq: 314159 INVITE
Contact: <sip:agent-7@192.0.2.20:5062>
Content-Type: application/sdp
Content-Length: @CL@

""",
    SDP,
)

# A body that is not UTF-8 (nor text at all), with CRLFCRLF inside it.
BINARY_BODY = wire(
    """\
MESSAGE sip:agent-7@example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.30;branch=z9hG4bKmsg-1
Max-Forwards: 70
To: <sip:agent-7@example.com>
From: <sip:bot@example.com>;tag=bot-1
Call-ID: msg-1
CSeq: 1 MESSAGE
Content-Type: application/octet-stream
Content-Length: @CL@

""",
    b"\xff\xfe\x00\x01\r\n\r\n\x80\xc3(binary)\xe2\x82",
)

#: Valid messages, each framed exactly by its Content-Length (no trailing bytes).
CORPUS = [INVITE, OPTIONS, REGISTER_COMPACT, BYE, RINGING, OK_200, BINARY_BODY]


# -- RFC 4475 §3.1.1: valid messages that must parse ----------------------------------------

# §3.1.1.1 wsinv: LWS everywhere, folded lines, mixed-case and compact names, unknown headers.
WSINV = wire(
    r"""INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : "J Rosenberg \\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : @CL@
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \"\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33

""",
    SDP,
)

# §3.1.1.2 intmeth: every token and word character. Adapted: the To display name
# keeps its escaped BEL and DEL but not the escaped NUL, because the parser refuses
# any NUL in the header section (hardening; see test_nul_in_a_header_is_refused).
INTMETH_METHOD = "!interesting-Method0123456789_*+`.%indeed'~"
INTMETH_URI = (
    "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    ":&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com"
)
INTMETH = wire(
    f"{INTMETH_METHOD} {INTMETH_URI} SIP/2.0\n"
    "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\n"
    'To: "BEL:\\\x07 DEL:\\\x7f" <sip:1_unusual.URI~(to-be!sure)&isn\'t+it$/crazy?,/;;*'
    "@example.com>\n"
    "From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>"
    ";fromParam''~+*_!.-%=\"работающий\";tag=_token~1'+`*%!-.\n"
    "Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\n"
    f"CSeq: 139122385 {INTMETH_METHOD}\n"
    "Max-Forwards: 255\n"
    "extensionHeader-!.%*+_`'~:\ufeff大停電\n"
    "Content-Length: 0\n"
    "\n"
)

# §3.1.1.3 esc01: %-escapes in the Request-URI, To, From and Contact parameters.
ESC01 = wire(
    """\
INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0
To: sip:%75se%72@example.com
From: <sip:I%20have%20spaces@example.net>;tag=938
Max-Forwards: 87
i: esc01.239409asdfakjkn23onasd0-3234
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw
C: application/sdp
Contact:
  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
Content-Length: @CL@

""",
    SDP,
)

# §3.1.1.5 esc02: an escaped method name is a different (extension) method.
ESC02 = wire(
    """\
RE%47IST%45R sip:registrar.example.com SIP/2.0
To: "%Z%45" <sip:resource@example.com>
From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23
Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209u2ufdf
CSeq: 29344 RE%47IST%45R
Max-Forwards: 70
Contact: <sip:alias1@host1.example.com>, <sip:alias2@host2.example.com>,
 <sip:alias3@host3.example.com>
l: 0

"""
)

# §3.1.1.6 lwsdisp: no LWS between a token display name and "<".
LWSDISP = wire(
    """\
OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: caller<sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: lwsdisp.1234abcd@funky.example.com
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw
l: 0

"""
)


def _longreq() -> bytes:
    """§3.1.1.7 longreq: long values everywhere and very many Via entries."""
    long = "extreme" * 60
    vias = "".join(
        f"Via: SIP/2.0/TCP sip{i}.example.com;branch=z9hG4bK{i}{long}\n" for i in range(20)
    )
    folded = "v: " + ",\n ".join(
        f"SIP/2.0/UDP 192.0.2.{i};branch=z9hG4bKfold{i}" for i in range(20, 40)
    )
    return wire(
        "INVITE sip:user@example.com SIP/2.0\n"
        f'To: "I have a user name of {long} proportion" <sip:user@example.com:6000;'
        f"unknownparam1=very{long}value;longparam{long}name=shortvalue;"
        f"very{long}ParamNameWithNoValue>\n"
        f"F: sip:{long}user@example.net;tag={long}1234\n"
        f"Call-ID: longreq.one{long}really{long}longcallid\n"
        "CSeq: 3882340 INVITE\n"
        f"Unknown-{long}-Name: unknown-{long}-value;unknown-{long}-parameter-name=value\n"
        f"{vias}"
        "Max-Forwards: 70\n"
        f"Contact: <sip:amazinglylongcallername{long}@host5.example.net>\n"
        f"{folded}\n"
        "Content-Type: application/sdp\n"
        "l: @CL@\n"
        "\n",
        SDP,
    )


LONGREQ = _longreq()

# §3.1.1.8 dblreq: bytes after Content-Length in a datagram are discarded (§18.3).
DBLREQ = wire(
    """\
REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=43251j3j324
Max-Forwards: 8
I: dblreq.0ha0isndaksdj99sdfafnl3lk233412
Contact: sip:j.user@host.example.com
CSeq: 8 REGISTER
Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492
Content-Length: 0

INVITE sip:joe@example.com SIP/2.0
t: sip:joe@example.com
From: sip:caller@example.net;tag=141334
Max-Forwards: 8
Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234
Content-Type: application/sdp
Content-Length: @CL@

""",
    SDP,
)

# §3.1.1.9 semiuri: ";" is user-unreserved, so "user;par=u%40example.net" is the user part.
SEMIURI = wire(
    """\
OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Call-ID: semiuri.0ha0isndaksdj
CSeq: 8 OPTIONS
Accept: application/sdp, application/pkcs7-mime,
        multipart/mixed, multipart/signed,
        message/sip, message/sipfrag
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw
l: 0

"""
)

# §3.1.1.10 transports: unknown transports in Via are still valid.
TRANSPORTS = wire(
    """\
OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: <sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID:  transports.kijh4akdnaqjkwendsasfdj
Accept: application/sdp
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee
l: 0

"""
)

# §3.1.1.12 unreason: a reason phrase with UTF-8 (and "*", "=") in it.
UNREASON_PHRASE = "= 2**3 * 5**2 но сто девяносто девять - простое"
UNREASON = wire(
    f"""\
SIP/2.0 200 {UNREASON_PHRASE}
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Call-ID: unreason.1234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: @CL@
Content-Type: application/sdp
Contact: <sip:user@host198.example.com>

""",
    SDP,
)

# §3.1.1.13 noreason: an empty reason phrase (the SP before it is still there).
NOREASON = wire(
    """\
SIP/2.0 100 \n\
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: noreason.asndj203insdf99223ndf
CSeq: 35 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>

"""
)

#: The valid torture messages, also used as a mutation corpus.
TORTURE_VALID = {
    "wsinv": WSINV,
    "intmeth": INTMETH,
    "esc01": ESC01,
    "esc02": ESC02,
    "lwsdisp": LWSDISP,
    "longreq": LONGREQ,
    "semiuri": SEMIURI,
    "transports": TRANSPORTS,
    "unreason": UNREASON,
    "noreason": NOREASON,
}
