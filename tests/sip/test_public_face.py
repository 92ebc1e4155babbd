"""`callcenter.sip` is the SIP core's public face: its names are the core's own
objects, and importing it does no I/O (the asyncio transports stay apart)."""

from __future__ import annotations

import subprocess
import sys
import types

import callcenter.sip as sip


def test_every_name_of_the_face_is_the_core_module_s_own_object() -> None:
    for name in sip.__all__:
        value = getattr(sip, name)
        if isinstance(value, types.UnionType):  # SipAction, SipEvent: unions of the classes
            assert all(getattr(sip, t.__name__) is t for t in value.__args__), name
            continue
        module = getattr(value, "__module__", None)
        if module is not None:  # classes and functions: defined in the core's modules
            assert module.startswith("callcenter.sip."), (name, module)
            assert getattr(sys.modules[module], name) is value
    assert {"SipEndpoint", "UserAgent", "Request", "parse_message", "Registrar"} <= set(sip.__all__)


def test_importing_the_face_loads_no_transport_and_no_asyncio() -> None:
    code = (
        "import sys; import callcenter.sip; "
        "print('callcenter.sip.aio' in sys.modules, 'asyncio' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
