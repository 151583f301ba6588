"""The SSH executor against a real OpenSSH server: a throwaway sshd started on the
loopback, on a free port, with its own host key and one authorized client key,
logging in as the user running the tests."""

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from maintenance.choices import ItemStatus, RunStatus
from maintenance.executors import GuestAuthFailed, GuestTimeout, GuestUnreachable, SSHExecutor
from maintenance.services import credential_save, run_start
from pools.models import VM
from tests.conftest import require

from .conftest import drive, make_task

SSHD = "/usr/sbin/sshd"
pytestmark = pytest.mark.ssh


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "deskops-test", "-f", str(path)],
        check=True,
    )


class SSHServer:
    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.user = getpass.getuser()
        for name in ("host_key", "client_key", "other_key"):
            keygen(root / name)
        authorized = root / "authorized_keys"
        authorized.write_text((root / "client_key.pub").read_text())
        authorized.chmod(0o600)
        config = root / "sshd_config"
        config.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {root / 'host_key'}\n"
            f"PidFile {root / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {authorized}\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "PermitRootLogin prohibit-password\n"
            "LogLevel ERROR\n"
        )
        self.log = (root / "sshd.log").open("w")
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (root / "sshd.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("sshd did not start listening")

    def key(self, name: str) -> str:
        return (self.root / name).read_text()

    def host_public_key(self) -> str:
        return self.key("host_key.pub")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    require(
        os.access(SSHD, os.X_OK) and shutil.which("ssh-keygen") is not None,
        "needs OpenSSH's server (Debian's openssh-server) for a real SSH guest",
    )
    if os.geteuid() == 0:
        # sshd running as root wants its privilege separation directory.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    server = SSHServer(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


def executor(sshd, **overrides) -> SSHExecutor:
    options = {
        "username": sshd.user,
        "port": sshd.port,
        "private_key": sshd.key("client_key"),
        "host_key": sshd.host_public_key(),
    }
    options.update(overrides)
    return SSHExecutor(**options)


def test_a_script_runs_with_its_output_and_exit_code(sshd):
    result = executor(sshd).run_script(
        address="127.0.0.1", script="echo patched $(whoami)\necho oops >&2\nexit 3\n", timeout=20
    )
    assert result.exit_code == 3
    assert result.stdout.strip() == f"patched {sshd.user}"
    assert result.stderr.strip() == "oops"


def test_a_shebang_picks_the_interpreter(sshd):
    script = "#!/usr/bin/env python3\nimport sys\nprint('from python', sys.version_info[0])\n"
    result = executor(sshd).run_script(address="127.0.0.1", script=script, timeout=20)
    assert result.succeeded and result.stdout.strip() == "from python 3"


def test_a_package_is_installed_through_the_credentials_command(sshd):
    ssh = executor(sshd, package_command="echo would install {package}")
    result = ssh.install_package(address="127.0.0.1", package="vim-tiny", timeout=20)
    assert result.succeeded and result.stdout.strip() == "would install vim-tiny"
    with pytest.raises(ValueError):
        ssh.install_package(address="127.0.0.1", package="vim; reboot", timeout=20)


def test_without_a_pinned_host_key_any_key_is_accepted(sshd):
    result = executor(sshd, host_key="").run_script(address="127.0.0.1", script="true", timeout=20)
    assert result.succeeded


def test_a_host_key_other_than_the_pinned_one_is_refused(sshd):
    with pytest.raises(GuestAuthFailed, match="unexpected host key"):
        executor(sshd, host_key=sshd.key("other_key.pub")).run_script(
            address="127.0.0.1", script="true", timeout=20
        )


def test_a_key_the_guest_does_not_know_is_refused(sshd):
    with pytest.raises(GuestAuthFailed):
        executor(sshd, private_key=sshd.key("other_key")).run_script(
            address="127.0.0.1", script="true", timeout=20
        )


def test_a_command_past_its_timeout_is_cut_off(sshd):
    started = time.monotonic()
    with pytest.raises(GuestTimeout):
        executor(sshd).run_script(address="127.0.0.1", script="sleep 30", timeout=1)
    assert time.monotonic() - started < 10


def test_a_guest_that_does_not_answer_is_unreachable(sshd):
    with pytest.raises(GuestUnreachable):
        executor(sshd, port=free_port()).run_script(address="127.0.0.1", script="true", timeout=5)


@pytest.mark.django_db
def test_a_maintenance_run_patches_a_vm_over_ssh(sshd, warm_pool, tmp_path):
    credential = credential_save(
        credential=None,
        fields={
            "name": "linux-guests",
            "transport": "ssh",
            "username": sshd.user,
            "port": sshd.port,
            "ssh_host_key": sshd.host_public_key(),
        },
        private_key=sshd.key("client_key"),
        actor="test",
    )
    vm = VM.objects.filter(pool=warm_pool).first()
    VM.objects.filter(pk=vm.pk).update(ip_address="127.0.0.1")
    marker = tmp_path / "patched"
    task = make_task(
        vms=[vm], credential=credential, script=f"echo done > {marker}\necho patched\n"
    )

    run = drive(run_start(task=task, actor="operator"))

    assert run.status == RunStatus.SUCCEEDED
    item = run.items.get()
    assert item.status == ItemStatus.SUCCEEDED and item.output.strip() == "patched"
    assert marker.read_text().strip() == "done"
