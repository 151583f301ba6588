"""The WinRM executor (pywinrm) against a small local fake of a Windows guest's
WS-Management endpoint: it speaks the shell protocol pywinrm uses (Create,
Command, Receive, Signal, Delete), checks HTTP Basic credentials, decodes the
PowerShell it is sent and answers with output and an exit code. No Windows host
is available to the tests; the fake is where the protocol is exercised."""

import base64
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.etree import ElementTree

import pytest

from maintenance.executors import (
    ExecutorError,
    GuestAuthFailed,
    GuestTimeout,
    GuestUnreachable,
    WinRMExecutor,
)
from tests.maintenance.test_ssh import free_port

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
}
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
ENVELOPE = (
    '<s:Envelope xmlns:s="{s}" xmlns:a="{a}" xmlns:w="{w}" xmlns:rsp="{rsp}">'
    "<s:Header><a:RelatesTo>{relates}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>"
)
TIMEOUT_FAULT = (
    '<s:Envelope xmlns:s="{s}"><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code>'
    "<s:Reason><s:Text>The WS-Management service cannot complete the operation within the "
    "time specified in OperationTimeout.</s:Text></s:Reason><s:Detail>"
    '<f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" '
    'Code="2150858793"/></s:Detail></s:Fault></s:Body></s:Envelope>'
)


class FakeGuest:
    """What the fake Windows guest does: who may log in, what it runs."""

    def __init__(self):
        self.username, self.password = "Administrator", "Sup3r-secret"
        self.scripts: list[str] = []
        self.exit_code = 0
        self.hang = False
        self.actions: list[str] = []
        self.shells_open = 0


def make_handler(guest: FakeGuest):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep the test output clean
            pass

        def _reply(self, status: int, body: str):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            expected = base64.b64encode(f"{guest.username}:{guest.password}".encode()).decode()
            if self.headers.get("Authorization") != f"Basic {expected}":
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="WSMAN"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            # What pywinrm sent in this test, not untrusted input.
            root = ElementTree.fromstring(body)  # noqa: S314
            action = root.find("s:Header/a:Action", NS).text.rsplit("/", 1)[-1]
            message_id = root.find("s:Header/a:MessageID", NS).text
            guest.actions.append(action)
            answer = getattr(self, f"_{action.lower()}")(root)
            if answer is None:
                self._reply(500, TIMEOUT_FAULT.format(**NS))
                return
            self._reply(200, ENVELOPE.format(relates=message_id, body=answer, **NS))

        def _create(self, root):
            guest.shells_open += 1
            shell_id = str(uuid.uuid4()).upper()
            return (
                "<x:ResourceCreated xmlns:x='http://schemas.xmlsoap.org/ws/2004/09/transfer'>"
                f"<w:SelectorSet><w:Selector Name='ShellId'>{shell_id}</w:Selector></w:SelectorSet>"
                f"</x:ResourceCreated><rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId></rsp:Shell>"
            )

        def _command(self, root):
            line = root.find("s:Body/rsp:CommandLine", NS)
            arguments = line.find("rsp:Arguments", NS).text
            encoded = re.search(r"-EncodedCommand (\S+)", arguments).group(1)
            guest.scripts.append(base64.b64decode(encoded).decode("utf-16-le"))
            self.server.receives = 0
            command_id = str(uuid.uuid4()).upper()
            return (
                f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId>"
                "</rsp:CommandResponse>"
            )

        def _receive(self, root):
            if guest.hang:
                return None  # the guest's "no output yet, ask again"
            self.server.receives += 1
            command_id = root.find("s:Body/rsp:Receive/rsp:DesiredStream", NS).get("CommandId")
            if self.server.receives == 1:
                out = base64.b64encode(b"part one\r\n").decode()
                return (
                    f"<rsp:ReceiveResponse><rsp:Stream Name='stdout' CommandId='{command_id}'>"
                    f"{out}</rsp:Stream><rsp:CommandState CommandId='{command_id}' "
                    f"State='{SHELL}/CommandState/Running'/></rsp:ReceiveResponse>"
                )
            out = base64.b64encode(f"ran: {guest.scripts[-1]}\r\n".encode()).decode()
            err = base64.b64encode(b"a warning\r\n").decode() if guest.exit_code else ""
            return (
                f"<rsp:ReceiveResponse><rsp:Stream Name='stdout' CommandId='{command_id}'>{out}"
                f"</rsp:Stream><rsp:Stream Name='stderr' CommandId='{command_id}'>{err}"
                f"</rsp:Stream><rsp:CommandState CommandId='{command_id}' "
                f"State='{SHELL}/CommandState/Done'><rsp:ExitCode>{guest.exit_code}"
                "</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>"
            )

        def _signal(self, root):
            return "<rsp:SignalResponse/>"

        def _delete(self, root):
            guest.shells_open -= 1
            return ""

    return Handler


@pytest.fixture
def windows_guest():
    guest = FakeGuest()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(guest))
    server.receives = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    guest.port = server.server_address[1]
    yield guest
    server.shutdown()
    server.server_close()


def winrm(guest, **overrides) -> WinRMExecutor:
    options = {
        "username": guest.username,
        "password": guest.password,
        "port": guest.port,
        "https": False,
        "auth": "basic",
        "operation_timeout": 1,
    }
    options.update(overrides)
    return WinRMExecutor(**options)


def test_a_powershell_script_runs_and_its_output_is_read_to_the_end(windows_guest):
    result = winrm(windows_guest).run_script(
        address="127.0.0.1", script="Get-Service wuauserv | Restart-Service", timeout=20
    )
    assert result.succeeded
    assert windows_guest.scripts == ["Get-Service wuauserv | Restart-Service"]
    assert result.stdout.startswith("part one") and "ran: Get-Service" in result.stdout
    # Create, Command, Receive (running), Receive (done), Signal, Delete.
    assert windows_guest.actions == ["Create", "Command", "Receive", "Receive", "Signal", "Delete"]
    assert windows_guest.shells_open == 0


def test_the_exit_code_and_errors_come_back(windows_guest):
    windows_guest.exit_code = 1603
    result = winrm(windows_guest).run_script(address="127.0.0.1", script="exit 1603", timeout=20)
    assert result.exit_code == 1603 and result.stderr.strip() == "a warning"


def test_a_package_goes_through_the_package_command(windows_guest):
    result = winrm(windows_guest).install_package(
        address="127.0.0.1", package="7zip.install", timeout=20
    )
    assert result.succeeded
    assert windows_guest.scripts == ["choco install 7zip.install -y --no-progress"]


def test_the_user_notice_is_quoted_for_powershell(windows_guest):
    winrm(windows_guest).notify_users(address="127.0.0.1", message="Save your work, it's time")
    assert windows_guest.scripts == ["msg.exe '*' '/TIME:300' 'Save your work, it''s time'"]


def test_wrong_credentials_are_refused(windows_guest):
    with pytest.raises(GuestAuthFailed):
        winrm(windows_guest, password="wrong").run_script(
            address="127.0.0.1", script="hostname", timeout=20
        )


def test_a_command_that_never_finishes_is_cut_off_at_its_timeout(windows_guest):
    windows_guest.hang = True
    with pytest.raises(GuestTimeout):
        winrm(windows_guest).run_script(address="127.0.0.1", script="Start-Sleep 999", timeout=1)
    assert windows_guest.shells_open == 0  # the shell is closed all the same


def test_a_guest_that_does_not_listen_is_unreachable():
    with pytest.raises(GuestUnreachable):
        WinRMExecutor(
            username="a", password="b", port=free_port(), https=False, auth="basic"
        ).run_script(address="127.0.0.1", script="hostname", timeout=5)


def test_the_endpoint_defaults_to_https_on_5986():
    executor = WinRMExecutor(username="a", password="b")
    assert executor.endpoint("10.0.0.5") == "https://10.0.0.5:5986/wsman"
    assert WinRMExecutor(username="a", password="b", https=False).endpoint("fe80::1") == (
        "http://[fe80::1]:5985/wsman"
    )
    assert issubclass(GuestTimeout, ExecutorError)
