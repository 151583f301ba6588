"""Running commands inside the guests: one interface, three implementations.

- `SimulatedExecutor`: the demo's; takes a while and fails a configurable share
  of the time (`MAINTENANCE_SIM_FAILURE_RATE`, `MAINTENANCE_SIM_SECONDS`).
- `SSHExecutor`: paramiko; password or private key; the guest's host key is
  checked when the credential names it.
- `WinRMExecutor`: pywinrm; PowerShell over WS-Management (NTLM, Kerberos, Basic
  or CredSSP; HTTPS by default).

`executor_for(credential)` builds the right one with the credential's secrets
decrypted only in memory. Every failure to reach, log in or finish in time is an
`ExecutorError`; a command that ran and exited non-zero is a `CommandResult` with
its exit code."""

import base64
import io
import logging
import re
import shlex
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from random import Random

import paramiko
from django.conf import settings

from .choices import GuestTransport
from .crypto import decrypt_secret

logger = logging.getLogger(__name__)

# Package names as package managers spell them; anything else (spaces, quotes,
# semicolons) is refused rather than quoted, so no template can be broken out of.
PACKAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_:=~@/-]{0,199}$")
OUTPUT_LIMIT = 8000


class ExecutorError(Exception):
    """The command could not be run to its end: the guest did not answer, refused
    the login, or the command outlived its timeout."""


class GuestUnreachable(ExecutorError):
    pass


class GuestAuthFailed(ExecutorError):
    pass


class GuestTimeout(ExecutorError):
    pass


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: str = ""
    stderr: str = ""

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0

    @property
    def output(self) -> str:
        """Both streams, the end kept when too long (the end says what failed)."""
        text = self.stdout
        if self.stderr:
            text = f"{text}\n--- stderr ---\n{self.stderr}" if text else self.stderr
        return text[-OUTPUT_LIMIT:]


class GuestExecutor(ABC):
    """Runs commands in one kind of guest. `address` is the VM's IP address."""

    @abstractmethod
    def run_script(self, *, address: str, script: str, timeout: float) -> CommandResult: ...

    @abstractmethod
    def install_package(self, *, address: str, package: str, timeout: float) -> CommandResult: ...

    @abstractmethod
    def notify_users(self, *, address: str, message: str) -> None:
        """Show a message to whoever is logged in (best effort)."""


def check_package_name(package: str) -> str:
    if not PACKAGE_NAME.match(package or ""):
        raise ValueError(f"{package!r} is not a package name.")
    return package


class SimulatedExecutor(GuestExecutor):
    """The demo's guests: every command takes `seconds` and fails with exit code 1
    in a `failure_rate` share of the runs."""

    def __init__(
        self, *, failure_rate: float = 0.0, seconds: float = 0.0, rng: Random | None = None
    ):
        self.failure_rate = failure_rate
        self.seconds = seconds
        self.rng = rng or Random()

    def _simulate(self, what: str, timeout: float) -> CommandResult:
        if self.seconds:
            time.sleep(min(self.seconds, timeout))
        if self.seconds > timeout:
            raise GuestTimeout(f"simulated: {what} took longer than {timeout:.0f} s")
        if self.failure_rate and self.rng.random() < self.failure_rate:
            return CommandResult(exit_code=1, stderr=f"simulated failure of {what}")
        return CommandResult(exit_code=0, stdout=f"simulated: {what} done")

    def run_script(self, *, address: str, script: str, timeout: float) -> CommandResult:
        lines = len(script.splitlines())
        return self._simulate(f"a script of {lines} lines on {address}", timeout)

    def install_package(self, *, address: str, package: str, timeout: float) -> CommandResult:
        check_package_name(package)
        return self._simulate(f"install of {package} on {address}", timeout)

    def notify_users(self, *, address: str, message: str) -> None:
        logger.info("simulated notice on %s: %s", address, message)


class SSHExecutor(GuestExecutor):
    """Commands over SSH (paramiko). A script is copied to a temporary file and
    executed, so a shebang line picks its interpreter; without one, sh runs it."""

    DEFAULT_PACKAGE_COMMAND = "sudo -n apt-get install -y {package}"
    SCRIPT_RUNNER = (
        'f=$(mktemp) && cat > "$f" && chmod 700 "$f" && "$f"; rc=$?; rm -f "$f"; exit $rc'
    )

    def __init__(
        self,
        *,
        username: str,
        port: int = 22,
        password: str = "",
        private_key: str = "",
        host_key: str = "",
        package_command: str = "",
        connect_timeout: float = 10.0,
    ):
        self.username = username
        self.port = port
        self.password = password
        self.private_key = private_key
        self.host_key = host_key.strip()
        self.package_command = package_command or self.DEFAULT_PACKAGE_COMMAND
        self.connect_timeout = connect_timeout

    def _load_private_key(self):
        for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
            try:
                return key_class.from_private_key(io.StringIO(self.private_key))
            except (paramiko.SSHException, ValueError):
                continue
        raise GuestAuthFailed("The credential's private key is not a key paramiko can read.")

    def _client(self, address: str):
        client = paramiko.SSHClient()
        if self.host_key:
            key_type, key_data = self.host_key.split()[:2]
            key = paramiko.PKey.from_type_string(key_type, base64.b64decode(key_data))
            name = address if self.port == 22 else f"[{address}]:{self.port}"
            client.get_host_keys().add(name, key.get_name(), key)
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        else:
            client.set_missing_host_key_policy(_LogHostKey())
        pkey = self._load_private_key() if self.private_key else None
        try:
            client.connect(
                hostname=address,
                port=self.port,
                username=self.username,
                password=self.password or None,
                pkey=pkey,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                look_for_keys=False,
                allow_agent=False,
            )
        except paramiko.AuthenticationException as exc:
            client.close()
            raise GuestAuthFailed(f"SSH login to {address} refused: {exc}") from exc
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise GuestAuthFailed(f"{address} presented an unexpected host key") from exc
        except paramiko.SSHException as exc:
            client.close()
            if "not found in known_hosts" in str(exc):
                raise GuestAuthFailed(f"{address} presented an unexpected host key") from exc
            raise GuestUnreachable(f"SSH to {address} failed: {exc}") from exc
        except OSError as exc:
            client.close()
            raise GuestUnreachable(f"cannot reach {address}:{self.port}: {exc}") from exc
        return client

    def _run(self, address: str, command: str, *, stdin: str = "", timeout: float) -> CommandResult:
        client = self._client(address)
        try:
            channel = client.get_transport().open_session()
            channel.settimeout(1.0)
            channel.exec_command(command)
            if stdin:
                channel.sendall(stdin.encode())
            channel.shutdown_write()
            stdout, stderr = bytearray(), bytearray()
            deadline = time.monotonic() + timeout
            while True:
                while channel.recv_ready():
                    stdout += channel.recv(65536)
                while channel.recv_stderr_ready():
                    stderr += channel.recv_stderr(65536)
                if channel.exit_status_ready() and not (
                    channel.recv_ready() or channel.recv_stderr_ready()
                ):
                    break
                if time.monotonic() > deadline:
                    channel.close()
                    raise GuestTimeout(f"the command on {address} ran past {timeout:.0f} s")
                time.sleep(0.05)
            return CommandResult(
                exit_code=channel.recv_exit_status(),
                stdout=stdout.decode(errors="replace")[-OUTPUT_LIMIT:],
                stderr=stderr.decode(errors="replace")[-OUTPUT_LIMIT:],
            )
        except (OSError, paramiko.SSHException) as exc:
            raise GuestUnreachable(f"the SSH connection to {address} broke: {exc}") from exc
        finally:
            client.close()

    def run_script(self, *, address: str, script: str, timeout: float) -> CommandResult:
        return self._run(address, self.SCRIPT_RUNNER, stdin=script, timeout=timeout)

    def install_package(self, *, address: str, package: str, timeout: float) -> CommandResult:
        command = self.package_command.format(package=shlex.quote(check_package_name(package)))
        return self._run(address, command, timeout=timeout)

    def notify_users(self, *, address: str, message: str) -> None:
        self._run(address, f"printf '%s\\n' {shlex.quote(message)} | wall", timeout=30)


class _LogHostKey(paramiko.MissingHostKeyPolicy):
    """Accept a guest's host key the credential does not pin, and log its
    fingerprint (desktops rebuilt from an image often share or renew their keys,
    so a known_hosts file per VM does not hold; pinning the image's key does)."""

    def missing_host_key(self, client, hostname, key):
        logger.info(
            "accepting SSH host key %s %s of %s",
            key.get_name(),
            key.fingerprint,
            hostname,
        )


class WinRMExecutor(GuestExecutor):
    """PowerShell over WS-Management (pywinrm). The output is read in a loop with
    its own deadline, so a hung command ends at the task's timeout."""

    DEFAULT_PACKAGE_COMMAND = "choco install {package} -y --no-progress"

    def __init__(
        self,
        *,
        username: str,
        password: str,
        port: int | None = None,
        https: bool = True,
        verify_tls: bool = True,
        auth: str = "ntlm",
        package_command: str = "",
        operation_timeout: int = 20,
    ):
        self.username = username
        self.password = password
        self.https = https
        self.port = port or (5986 if https else 5985)
        self.verify_tls = verify_tls
        self.auth = auth
        self.package_command = package_command or self.DEFAULT_PACKAGE_COMMAND
        self.operation_timeout = operation_timeout

    def endpoint(self, address: str) -> str:
        host = f"[{address}]" if ":" in address else address
        return f"{'https' if self.https else 'http'}://{host}:{self.port}/wsman"

    def _powershell(self, address: str, script: str, *, timeout: float) -> CommandResult:
        import requests
        from winrm.exceptions import (
            InvalidCredentialsError,
            WinRMError,
            WinRMOperationTimeoutError,
            WinRMTransportError,
        )
        from winrm.protocol import Protocol

        protocol = Protocol(
            self.endpoint(address),
            transport=self.auth,
            username=self.username,
            password=self.password,
            server_cert_validation="validate" if self.verify_tls else "ignore",
            # The system's CA bundle (requests honours REQUESTS_CA_BUNDLE itself).
            ca_trust_path=None,
            operation_timeout_sec=self.operation_timeout,
            read_timeout_sec=self.operation_timeout + 10,
        )
        encoded = base64.b64encode(script.encode("utf-16-le")).decode("ascii")
        try:
            shell_id = protocol.open_shell()
            try:
                command_id = protocol.run_command(
                    shell_id,
                    "powershell.exe",
                    ["-NoProfile", "-NonInteractive", "-EncodedCommand", encoded],
                )
                stdout, stderr = [], []
                deadline = time.monotonic() + timeout
                while True:
                    if time.monotonic() > deadline:
                        raise GuestTimeout(f"the command on {address} ran past {timeout:.0f} s")
                    try:
                        out, err, code, done = protocol.get_command_output_raw(shell_id, command_id)
                    except WinRMOperationTimeoutError:
                        continue  # no output yet: the guest asks us to ask again
                    stdout.append(out)
                    stderr.append(err)
                    if done:
                        break
                protocol.cleanup_command(shell_id, command_id)
            finally:
                protocol.close_shell(shell_id)
        except InvalidCredentialsError as exc:
            raise GuestAuthFailed(f"WinRM login to {address} refused") from exc
        except requests.exceptions.RequestException as exc:
            raise GuestUnreachable(f"cannot reach WinRM on {address}: {exc}") from exc
        except (WinRMTransportError, WinRMError) as exc:
            raise ExecutorError(f"WinRM on {address} failed: {exc}") from exc
        return CommandResult(
            exit_code=code,
            stdout=b"".join(stdout).decode(errors="replace")[-OUTPUT_LIMIT:],
            stderr=b"".join(stderr).decode(errors="replace")[-OUTPUT_LIMIT:],
        )

    def run_script(self, *, address: str, script: str, timeout: float) -> CommandResult:
        return self._powershell(address, script, timeout=timeout)

    def install_package(self, *, address: str, package: str, timeout: float) -> CommandResult:
        command = self.package_command.format(package=check_package_name(package))
        return self._powershell(address, command, timeout=timeout)

    def notify_users(self, *, address: str, message: str) -> None:
        quoted = "'" + message.replace("'", "''") + "'"
        self._powershell(address, f"msg.exe '*' '/TIME:300' {quoted}", timeout=30)


def executor_for(credential) -> GuestExecutor:
    """The executor a credential describes, with its secrets decrypted."""
    if credential is None or credential.transport == GuestTransport.SIMULATED:
        return SimulatedExecutor(
            failure_rate=settings.MAINTENANCE_SIM_FAILURE_RATE,
            seconds=settings.MAINTENANCE_SIM_SECONDS,
        )
    if credential.transport == GuestTransport.SSH:
        return SSHExecutor(
            username=credential.username,
            port=credential.port or 22,
            password=decrypt_secret(credential.password_encrypted),
            private_key=decrypt_secret(credential.private_key_encrypted),
            host_key=credential.ssh_host_key,
            package_command=credential.package_command,
        )
    if credential.transport == GuestTransport.WINRM:
        return WinRMExecutor(
            username=credential.username,
            password=decrypt_secret(credential.password_encrypted),
            port=credential.port,
            https=credential.winrm_https,
            verify_tls=credential.winrm_verify_tls,
            auth=credential.winrm_auth,
            package_command=credential.package_command,
        )
    raise ExecutorError(f"Unknown guest transport {credential.transport!r}.")
