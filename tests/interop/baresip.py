"""A real softphone for the interop tests: Debian's baresip, run headless.

`Baresip` writes a private configuration directory (``config`` and
``accounts``, passed with ``-f``) and starts ``baresip`` on it:

* SIP on 127.0.0.1 only (``sip_listen``): baresip 1.0 listens for UDP and TCP
  on the port and for TLS on the next one, so both must be free; media on
  the loopback address too (``net_interface 127.0.0.1``), so its SDP and any RTP it
  sends stay on 127.0.0.1;
* no sound card: the G.711 codecs (``g711``), a file of silence as the
  microphone (``aufile``; Debian's ``ausine`` gives 48 kHz only, which G.711
  cannot take) as long as baresip lives, for baresip hangs up at its end, and
  no speaker (baresip 1.0 plays nothing without a player module); no console or other user interface module, stdin is /dev/null;
* one account, the agent's phone: ``<sip:EXT@HOST:PORT;transport=udp>`` with
  its password, and ``answermode=auto`` when it should answer calls by itself;
* SIP trace on (``-s``): every message sent and received is in its output,
  which goes to ``baresip.log`` in the directory (`log_text`, and `messages`
  as `phones.Traced`, like SIPp's);
* a bounded lifetime twice over: baresip's own ``-t`` (quit after that many
  seconds) and `stop`, which the fixture calls in teardown (SIGTERM, then
  SIGKILL after a bound).
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
import wave
from pathlib import Path

from .phones import Traced
from .tools import free_port

LOOPBACK = "127.0.0.1"
MODULES = Path("/usr/lib/baresip/modules")

# The trace prints each message in colour: "ESC[36;1m#", a line "UDP a:b ->
# c:d", the message as sent (CRLF line ends), a newline and "ESC[;m".
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TRACED = re.compile(
    r"\x1b\[36;1m#\n(?P<proto>UDP|TCP|TLS) (?P<src>\S+) -> (?P<dst>\S+)\n(?P<msg>.*?)\n\x1b\[;m",
    flags=re.DOTALL,
)


class Baresip:
    """One headless baresip registering ``extension`` at ``registrar``."""

    def __init__(
        self,
        binary: str,
        workdir: Path,
        registrar: tuple[str, int],
        extension: str,
        password: str,
        *,
        auto_answer: bool = False,
        lifetime: int = 30,
        regint: int = 600,
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.registrar = registrar
        self.extension = extension
        self.port = _free_port_pair()
        self.lifetime = lifetime
        self._process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "config").write_text(
            "\n".join(
                [
                    f"sip_listen {LOOPBACK}:{self.port}",
                    f"net_interface {LOOPBACK}",
                    f"module_path {MODULES}",
                    "module g711.so",
                    "module aufile.so",
                    "module_app account.so",
                    f"audio_source aufile,{self._silence()}",
                    "",
                ]
            )
        )
        host, port = registrar
        answer = ";answermode=auto" if auto_answer else ""
        (workdir / "accounts").write_text(
            f"<sip:{extension}@{host}:{port};transport=udp>"
            f";auth_pass={password};regint={regint}{answer}\n"
        )

    def _silence(self) -> Path:
        """Silence (8 kHz, 16 bits, mono) for the "microphone", as long as the
        lifetime: at the file's end baresip hangs up."""
        path = self.workdir / "silence.wav"
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(bytes(2 * 8000 * self.lifetime))
        return path

    @property
    def log_path(self) -> Path:
        return self.workdir / "baresip.log"

    def start(self) -> Baresip:
        # Line-buffered output: the trace is read while baresip runs.
        command = ["stdbuf", "-oL", "-eL", self.binary, "-f", str(self.workdir)]
        command += ["-s", "-t", str(self.lifetime)]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )
        return self

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, grace: float = 3.0) -> int | None:
        """SIGTERM (baresip unregisters and quits), SIGKILL after ``grace`` s."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5.0)
        return process.returncode

    def log_text(self) -> str:
        if not self.log_path.exists():
            return ""
        return _ANSI.sub("", self.log_path.read_bytes().decode(errors="replace"))

    def messages(self) -> list[Traced]:
        """The SIP messages baresip sent and received so far, in order."""
        if not self.log_path.exists():
            return []
        raw = self.log_path.read_bytes().decode(errors="replace")
        mine = f"{LOOPBACK}:{self.port}"
        out = []
        for match in _TRACED.finditer(raw):
            text = match.group("msg").replace("\r\n", "\n")
            out.append(Traced(match.group("src") != mine, text.split("\n", 1)[0], text))
        return out

    def wait_for_line(self, needle: str, timeout: float) -> bool:
        """True once ``needle`` is in the output (polled; False after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_text():
                return True
            if not self.running:
                return needle in self.log_text()
            time.sleep(0.05)
        return False


def _free_port_pair(attempts: int = 50) -> int:
    """A port free for UDP and TCP whose next one is free for TCP (baresip's TLS)."""
    for _ in range(attempts):
        port = free_port(LOOPBACK)
        if port < 65535:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tls:
                try:
                    tls.bind((LOOPBACK, port + 1))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free pair of ports found")
