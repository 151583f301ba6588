"""Fixtures of the cloud tests: the real-Nova harness and regions that point at it.

The harness (tests/nova/serve.py) runs in its own virtualenv, .venv-nova, which
scripts/nova-venv.sh builds (a no-op when it is up to date). It is started once
per test session as a subprocess; the tests reach it only through clouds.yaml and
openstacksdk, as the portal reaches a real cloud."""

import json
import logging
import os
import selectors
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloud.choices import DriverKind
from cloud.drivers.openstack import forget_connections
from cloud.models import Region
from tests.conftest import require

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
NOVA_PYTHON = ROOT / ".venv-nova" / "bin" / "python"
HARNESS = ROOT / "tests" / "nova" / "serve.py"
VENV_BUILD_TIMEOUT = 900
START_TIMEOUT = 120
CLOUD = "nova-harness"
MEMBER_CLOUD = "nova-harness-member"


@dataclass(frozen=True)
class NovaHarness:
    """A running harness: its ready line (`info`) and the clouds.yaml naming it."""

    info: dict
    clouds_yaml: Path
    log: Path

    @property
    def region_name(self) -> str:
        return self.info["region_name"]


def _build_venv() -> str | None:
    """Build .venv-nova if needed; the reason it could not be, or None."""
    try:
        built = subprocess.run(
            [str(ROOT / "scripts" / "nova-venv.sh")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=VENV_BUILD_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"scripts/nova-venv.sh did not finish: {exc}"
    if built.returncode != 0:
        return f"scripts/nova-venv.sh failed: {built.stderr.strip()[-1500:]}"
    return None


def _await_ready_line(process: subprocess.Popen, timeout: float) -> str | None:
    """The harness's first line of output, or None if it died or took too long."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.5):
                return process.stdout.readline() or None
            if process.poll() is not None:
                return None
    return None


def _clouds_yaml(info: dict, path: Path) -> None:
    """Two clouds.yaml entries: the admin account the driver needs, and a plain
    project member (to show what an account without admin rights gets)."""

    def entry(username: str) -> dict:
        return {
            "auth": {
                "auth_url": info["auth_url"],
                "username": username,
                "password": info["password"],
                "project_name": info["project_name"],
                "user_domain_name": info["domain"],
                "project_domain_name": info["domain"],
            },
            "region_name": info["region_name"],
            "identity_api_version": 3,
        }

    clouds = {CLOUD: entry(info["username"]), MEMBER_CLOUD: entry(info["member_username"])}
    # JSON is YAML, and openstacksdk reads either.
    path.write_text(json.dumps({"clouds": clouds}, indent=2))


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@pytest.fixture(scope="session")
def nova_harness(tmp_path_factory):
    """Real Nova (api, conductor, scheduler, three fake computes) behind a fake
    Keystone on the loopback, and OS_CLIENT_CONFIG_FILE pointing at a clouds.yaml
    for it. Skips (fails in CI) with the reason when it cannot be had."""
    reason = _build_venv()
    require(reason is None, f"no real-Nova harness: {reason}")
    workdir = tmp_path_factory.mktemp("nova")
    log = workdir / "harness.log"
    started = time.monotonic()
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [str(NOVA_PYTHON), str(HARNESS)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "OS_NOVA_DISABLE_EVENTLET_PATCHING": "1"},
        )
    line = _await_ready_line(process, START_TIMEOUT)
    if line is None:
        _stop(process)
        tail = log.read_text()[-2000:]
        require(False, f"the real-Nova harness did not start: {tail}")
    info = json.loads(line)
    logger.info("nova harness ready in %.1f s at %s", time.monotonic() - started, info["base_url"])
    clouds_yaml = workdir / "clouds.yaml"
    _clouds_yaml(info, clouds_yaml)
    previous = os.environ.get("OS_CLIENT_CONFIG_FILE")
    os.environ["OS_CLIENT_CONFIG_FILE"] = str(clouds_yaml)
    try:
        yield NovaHarness(info=info, clouds_yaml=clouds_yaml, log=log)
    finally:
        if previous is None:
            os.environ.pop("OS_CLIENT_CONFIG_FILE", None)
        else:
            os.environ["OS_CLIENT_CONFIG_FILE"] = previous
        forget_connections()
        _stop(process)


def _nova_region(harness: NovaHarness, name: str, cloud: str) -> Region:
    return Region.objects.create(
        name=name,
        driver=DriverKind.OPENSTACK,
        openstack_cloud=cloud,
        openstack_region=harness.region_name,
    )


@pytest.fixture
def nova_region(nova_harness, db):
    """A region served by the harness, with the admin account."""
    return _nova_region(nova_harness, "nova", CLOUD)


@pytest.fixture
def nova_member_region(nova_harness, db):
    """The same cloud through an account that is only a project member."""
    return _nova_region(nova_harness, "nova-member", MEMBER_CLOUD)
