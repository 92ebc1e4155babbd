# ruff: noqa: E501  (ABNF quotations and regexes read best on one line)
"""RFC 3261 §25 grammar rules as compiled regular expressions.

Each rule quotes the ABNF it implements (in the manner of h11's `_abnf.py`), so a
reader can check one against the other. Only the rules the parser needs are
here; the others are either folded into these or handled by hand where the ABNF
is context sensitive (comma splitting, quoted strings with escapes).
"""

from __future__ import annotations

import re

# DIGIT = %x30-39: written [0-9], because \d also matches other scripts' digits.

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
TOKEN_RE = re.compile(TOKEN)

# word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" /
#        "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}" )
# callid = word [ "@" word ]
CALLID_RE = re.compile(
    r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+(?:@[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+)?"
)

# Method = INVITEm / ACKm / OPTIONSm / BYEm / CANCELm / REGISTERm / extension-method
# extension-method = token
METHOD_RE = re.compile(TOKEN)

# SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT   (we accept only 2.0, §8.2.1 -> 505)
VERSION_RE = re.compile(r"SIP/([0-9]+)\.([0-9]+)", re.IGNORECASE)

# Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF
# Status-Code = 3DIGIT ; Reason-Phrase = *(reserved / unreserved / escaped / UTF8-NONASCII / UTF8-CONT / SP / HTAB)
STATUS_LINE_RE = re.compile(r"(SIP/[0-9]+\.[0-9]+) ([1-6][0-9][0-9])(?: (.*))?", re.IGNORECASE)

# Request-Line = Method SP Request-URI SP SIP-Version CRLF
REQUEST_LINE_RE = re.compile(rf"({TOKEN}) (\S+) (SIP/[0-9]+\.[0-9]+)", re.IGNORECASE)

# header-name = token ; message-header = header-name HCOLON header-value CRLF
# HCOLON = *( SP / HTAB ) ":" SWS
HEADER_LINE_RE = re.compile(rf"({TOKEN})[ \t]*:[ \t]*(.*)", re.DOTALL)

# hostname = *( domainlabel "." ) toplabel [ "." ] ; IPv4address ; IPv6reference = "[" IPv6address "]"
HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?)"
HOST_RE = re.compile(HOST)

# hostport = host [ ":" port ] ; port = 1*DIGIT
HOSTPORT_RE = re.compile(rf"({HOST})(?::([0-9]{{1,5}}))?")

# via-parm = sent-protocol LWS sent-by *( SEMI via-params )
# sent-protocol = protocol-name SLASH protocol-version SLASH transport
VIA_RE = re.compile(
    rf"[ \t]*({TOKEN})[ \t]*/[ \t]*({TOKEN})[ \t]*/[ \t]*({TOKEN})[ \t\r\n]+({HOST})(?:[ \t]*:[ \t]*([0-9]{{1,5}}))?[ \t]*(.*)",
    re.DOTALL,
)

# CSeq = "CSeq" HCOLON 1*DIGIT LWS Method
CSEQ_RE = re.compile(rf"[ \t]*([0-9]{{1,10}})[ \t]+({TOKEN})[ \t]*")

# SIP-URI = "sip:" [ userinfo ] hostport uri-parameters [ headers ]
# userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"
# user = 1*( unreserved / escaped / user-unreserved ) ; user-unreserved includes ";" "?" "/"
# so `sip:user;par=x@host` has user "user;par=x" (RFC 4475 §3.1.1.9); '@' ends the user.
# No part of it holds a control character (none of RFC 3261's URI characters is
# one), so nothing read from a URI can be sent back with one in it.
_NO_CTL = r"\x00-\x1f\x7f"
SIP_URI_RE = re.compile(
    rf"(sips?):(?:([^:@\s{_NO_CTL}]+)(?::([^@;?\s{_NO_CTL}]*))?@)?({HOST})(?::([0-9]{{1,5}}))?"
    rf"((?:;[^;?{_NO_CTL}]*)*)(?:\?([^{_NO_CTL}]*))?",
    re.IGNORECASE | re.DOTALL,
)

# user = 1*( unreserved / escaped / user-unreserved )
# unreserved = alphanum / "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
# user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/" ; escaped = "%" HEXDIG HEXDIG
USER_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+")

# absoluteURI = scheme ":" ( hier-part / opaque-part ) ; scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
ABSOLUTE_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:\S+")

# The magic cookie that marks an RFC 3261 branch (§8.1.1.7).
BRANCH_MAGIC = "z9hG4bK"
