"""The SIP core: a sans-I/O user agent (decision 0001), and its public face.

Bytes go in with the time (`SipEndpoint.receive(data, source, now)`), actions
come out (`Send` to put on the wire, events such as `RequestReceived` for the
layer above); nothing here reads a clock, opens a socket or logs. The layers,
bottom up: parsing and serialising (`parse_message`, `StreamFramer`,
`Request`, `Response`), the four RFC 3261 §17 transaction machines behind
`SipEndpoint`, dialogs (`Dialog`), digest authentication (`DigestClient`,
`DigestServer`), the REGISTER client (`Registration`), the registrar for the
agents' phones (`Registrar`, `PhoneSecrets`) and the `UserAgent` that routes
between them. The asyncio transports that feed it are in `callcenter.sip.aio`,
the one module here that does I/O, and are not part of this face.
"""

from .auth import DigestClient, DigestServer
from .builders import make_response
from .dialog import Dialog, DialogId
from .endpoint import EndpointConfig, SipEndpoint
from .errors import (
    LocalProtocolError,
    MessageTooLarge,
    ParseError,
    RemoteProtocolError,
    SipError,
    TransactionStateError,
)
from .events import (
    CancelReceived,
    KeepAliveReceived,
    MessageRejected,
    PasswordGuessing,
    RequestReceived,
    RequestRefused,
    ResponseReceived,
    Send,
    SipAction,
    SipEvent,
    TransactionTimedOut,
    TxKey,
)
from .message import Address, Headers, Message, Request, Response, Transport
from .parser import KeepAlive, StreamFramer, parse_message
from .phones import PhoneSecrets
from .registrar import Registrar
from .registration import Account, Registration, RegState
from .timers import TimerConfig
from .ua import RegistrationChanged, RegistrationStatus, UaConfig, UserAgent

__all__ = [
    "Account",
    "Address",
    "CancelReceived",
    "Dialog",
    "DialogId",
    "DigestClient",
    "DigestServer",
    "EndpointConfig",
    "Headers",
    "KeepAlive",
    "KeepAliveReceived",
    "LocalProtocolError",
    "Message",
    "MessageRejected",
    "MessageTooLarge",
    "ParseError",
    "PasswordGuessing",
    "PhoneSecrets",
    "RegState",
    "Registrar",
    "Registration",
    "RegistrationChanged",
    "RegistrationStatus",
    "RemoteProtocolError",
    "Request",
    "RequestReceived",
    "RequestRefused",
    "Response",
    "ResponseReceived",
    "Send",
    "SipAction",
    "SipEndpoint",
    "SipError",
    "SipEvent",
    "StreamFramer",
    "TimerConfig",
    "TransactionStateError",
    "TransactionTimedOut",
    "Transport",
    "TxKey",
    "UaConfig",
    "UserAgent",
    "make_response",
    "parse_message",
]
