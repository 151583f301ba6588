"""The production deployment files: the systemd units start programs and modules
that exist, gunicorn's settings load, the environment example yields working
production settings (and production refuses to start without its secrets), the
proxy sends /ws/ to daphne and the rest to gunicorn, and the container image's
build step and entry point work."""

import configparser
import importlib
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, SETTINGS_PREFIXES, settings_in_fresh_interpreter

DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
INSTALL_DIR = "/opt/deskops"
VENV_BIN = Path(sys.executable).parent
UNIT_NAMES = [
    "deskops-web.service",
    "deskops-ws.service",
    "deskops-worker.service",
    "deskops-worker@.service",
    "deskops-beat.service",
    "deskops-migrate.service",
]
# Placeholders of the environment example, filled the way an operator would.
FILLED = {
    "DJANGO_SECRET_KEY": "s" * 50,
    "DESKOPS_CREDENTIALS_KEY": "k" * 40,
}


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(UNITS / name)
    return parser


def exec_lines(name: str) -> list[list[str]]:
    """Every ExecStart / ExecStartPre command of a unit, split into words (the
    parser keeps only the last of repeated keys, so they are read from the text)."""
    text = (UNITS / name).read_text()
    return [
        shlex.split(line.split("=", 1)[1])
        for line in text.splitlines()
        if line.startswith(("ExecStart=", "ExecStartPre="))
    ]


def env_example() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / "deskops.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            assert name == name.strip() and re.fullmatch(r"[A-Z][A-Z0-9_]*", name), line
            values[name] = value
    return values


def test_every_unit_is_there_and_has_its_sections():
    assert sorted(p.name for p in UNITS.iterdir()) == sorted(UNIT_NAMES)
    for name in UNIT_NAMES:
        parsed = unit(name)
        assert parsed.has_section("Unit") and parsed.has_section("Service"), name
        service = parsed["Service"]
        assert service["User"] == "deskops", name
        assert service["WorkingDirectory"] == INSTALL_DIR, name
        assert service["EnvironmentFile"] == "/etc/deskops/deskops.env", name
        if name != "deskops-migrate.service":
            assert parsed["Install"]["WantedBy"] == "multi-user.target", name
            assert "deskops-migrate.service" in parsed["Unit"]["After"], name


@pytest.mark.parametrize("name", UNIT_NAMES)
def test_each_command_runs_a_program_of_the_virtualenv_on_code_that_exists(name):
    commands = exec_lines(name)
    assert commands, name
    for words in commands:
        program = words[0]
        assert program.startswith(f"{INSTALL_DIR}/.venv/bin/"), words
        # The same program exists in this checkout's virtualenv.
        assert (VENV_BIN / Path(program).name).exists(), program
        for word in words[1:]:
            if re.fullmatch(r"[a-z_.]+:[a-z_]+", word):  # module:attribute
                module, attribute = word.split(":")
                assert hasattr(importlib.import_module(module), attribute), word
            elif word.endswith((".py", ".conf.py")):
                assert (ROOT / word).is_file(), word
        if "--app" in words:
            assert importlib.import_module(words[words.index("--app") + 1] + ".celery").app


def test_the_workers_consume_the_right_queues():
    from portal.celery import app

    general = exec_lines("deskops-worker.service")[0]
    region = exec_lines("deskops-worker@.service")[0]
    beat = exec_lines("deskops-beat.service")[0]
    assert general[general.index("--queues") + 1] == (app.conf.task_default_queue or "celery")
    assert region[region.index("--queues") + 1] == "region.%i"
    assert "worker" in general and "worker" in region and "beat" in beat
    web = exec_lines("deskops-web.service")
    assert web[-1][-1] == "portal.wsgi:application" and "deploy/gunicorn.conf.py" in web[-1]
    assert exec_lines("deskops-ws.service")[0][-1] == "portal.asgi:application"


def test_the_units_pass_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    env_file = tmp_path / "deskops.env"
    env_file.write_text("")
    names = []
    for name in UNIT_NAMES:
        text = (UNITS / name).read_text()
        text = text.replace(INSTALL_DIR, str(ROOT)).replace(
            "/etc/deskops/deskops.env", str(env_file)
        )
        target = name.replace("@.", "@east.")
        (tmp_path / target).write_text(text)
        names.append(f"./{target}")
    result = subprocess.run(  # noqa: S603 (a system tool on our own files)
        [analyze, "verify", "--man=no", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "deskops" not in result.stderr, result.stderr


def test_gunicorn_settings_load_with_defaults_and_from_the_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("GUNICORN_"):
            monkeypatch.delenv(name)
    defaults = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert defaults["workers"] == 2 * (os.cpu_count() or 1) + 1
    assert defaults["worker_class"] == "sync" and defaults["preload_app"] is True
    assert defaults["bind"] == ["127.0.0.1:8001"]
    assert defaults["timeout"] > defaults["graceful_timeout"] > 0

    monkeypatch.setenv("GUNICORN_WORKERS", "3")
    monkeypatch.setenv("GUNICORN_THREADS", "8")
    monkeypatch.setenv("GUNICORN_PRELOAD", "false")
    tuned = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert (tuned["workers"], tuned["threads"], tuned["worker_class"]) == (3, 8, "gthread")
    assert tuned["preload_app"] is False


def test_gunicorn_accepts_its_settings_and_loads_the_app():
    result = subprocess.run(  # noqa: S603 (our own virtualenv's gunicorn)
        [
            str(VENV_BIN / "gunicorn"),
            "--check-config",
            "--config",
            "deploy/gunicorn.conf.py",
            "portal.wsgi:application",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_environment_example_gives_working_production_settings():
    example = env_example()
    for name, value in example.items():
        assert "<" not in value or name in FILLED or "password" in value or "token" in value, name
    env = {name: FILLED.get(name, value) for name, value in example.items()}
    env.pop("DESKOPS_VAR_DIR")  # not writable here
    printed = (
        "(s.DEBUG, s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'], "
        "s.CELERY_BROKER_URL.split(':')[0], s.CELERY_REGION_QUEUES, s.TRUSTED_PROXIES, "
        "s.CACHES['default']['BACKEND'], s.SESSION_COOKIE_SECURE)"
    )
    result = settings_in_fresh_interpreter(printed, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(
        (
            False,
            "django.db.backends.postgresql",
            "channels_redis.core.RedisChannelLayer",
            "redis",
            True,
            ["127.0.0.1", "::1"],
            # Django's Redis cache, reusing its client objects (portal/cache.py).
            "portal.cache.RedisCache",
            True,
        )
    )


def test_every_variable_of_the_example_is_one_deskops_reads():
    read = "".join(
        path.read_text()
        for path in [*(ROOT / "portal" / "settings").glob("*.py"), DEPLOY / "gunicorn.conf.py"]
    )
    outside = {"OS_CLIENT_CONFIG_FILE", "DESKOPS_WORKER_CONCURRENCY", "EMAIL_URL"}
    for name in env_example():
        assert f'"{name}"' in read or name in outside, name
    # The variables the units and the entry point read themselves.
    units = "".join((UNITS / name).read_text() for name in UNIT_NAMES)
    assert "${DESKOPS_WORKER_CONCURRENCY}" in units


@pytest.mark.parametrize(
    "missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DESKOPS_CREDENTIALS_KEY"]
)
def test_production_refuses_to_start_without_its_secrets(missing, tmp_path):
    env = {
        "DESKOPS_PRODUCTION": "true",
        "DESKOPS_VAR_DIR": str(tmp_path),
        "DJANGO_SECRET_KEY": "s" * 50,
        "DJANGO_ALLOWED_HOSTS": "deskops.example.com",
        "DESKOPS_CREDENTIALS_KEY": "k" * 40,
    }
    env.pop(missing)
    result = settings_in_fresh_interpreter("s.DEBUG", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and missing in result.stderr


def _upstream_ports(conf: str) -> dict[str, str]:
    return {
        name: re.search(r"server 127\.0\.0\.1:(\d+)", body).group(1)
        for name, body in re.findall(r"upstream (\w+) \{(.*?)\}", conf, re.S)
    }


def _location(conf: str, path: str) -> str:
    """The body of the last `location <path> {...}` (the HTTPS server's)."""
    bodies = re.findall(rf"location {re.escape(path)} \{{(.*?)\n    \}}", conf, re.S)
    assert bodies, path
    return bodies[-1]


def test_the_proxy_sends_websockets_to_daphne_and_the_rest_to_gunicorn():
    conf = (DEPLOY / "nginx" / "deskops.conf").read_text()
    ports = _upstream_ports(conf)
    gunicorn_port = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))["bind"][0].rsplit(":", 1)[1]
    daphne_port = re.search(r"DESKOPS_WS_PORT=(\d+)", (UNITS / "deskops-ws.service").read_text())
    websockets, everything = _location(conf, "/ws/"), _location(conf, "/")
    assert "proxy_pass http://deskops_ws;" in websockets
    assert ports["deskops_ws"] == daphne_port.group(1)
    assert "proxy_set_header Upgrade $http_upgrade;" in websockets
    assert "proxy_pass http://deskops_http;" in everything
    assert ports["deskops_http"] == gunicorn_port
    for body in (websockets, everything):
        # Appended, so client_ip() finds the real peer at the right end.
        assert "X-Forwarded-For $proxy_add_x_forwarded_for" in body
        assert "X-Forwarded-Proto $scheme" in body
    # The websocket routes the proxy sends to daphne are the ones the app has.
    from monitoring.routing import websocket_urlpatterns

    assert all(str(route.pattern).startswith("ws/") for route in websocket_urlpatterns)
    # Nothing is served from disk by the proxy.
    assert not re.search(r"^\s*(root|alias)\s", conf, re.M)


def test_the_container_image_builds_a_non_root_image_for_every_role():
    text = (DEPLOY / "Containerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert "libldap2-dev" in text and "libsasl2-dev" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert 'ENTRYPOINT ["/app/deploy/container-entrypoint.sh"]' in text
    entrypoint = DEPLOY / "container-entrypoint.sh"
    assert os.access(entrypoint, os.X_OK)
    script = entrypoint.read_text()
    for role in ("web)", "ws)", "worker)", "beat)", "migrate)", "manage)"):
        assert f"    {role}" in script, role
    assert subprocess.run(["sh", "-n", str(entrypoint)], check=False).returncode == 0  # noqa: S603,S607


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}
    env.update(PATH=f"{VENV_BIN}:{env.get('PATH', '')}", **extra)
    return env


def test_the_image_build_step_collects_static_files_under_production_settings(tmp_path):
    """The Containerfile's collectstatic line, run as written (its own build-time
    values), into a throwaway folder: production settings accept them and the
    manifest whitenoise needs is written."""
    text = (DEPLOY / "Containerfile").read_text()
    step = re.search(r"RUN (DJANGO_SECRET_KEY=.*?manage\.py collectstatic)", text, re.S).group(1)
    assignments = dict(re.findall(r"([A-Z_]+)=(\S+)", step.split("python manage.py")[0]))
    assert {"DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DESKOPS_CREDENTIALS_KEY"} <= set(
        assignments
    )
    static_root = tmp_path / "static"
    assignments["DESKOPS_VAR_DIR"] = str(tmp_path / "var")
    result = subprocess.run(  # noqa: S603 (our own interpreter)
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=_clean_env(
            DESKOPS_PRODUCTION="true", DJANGO_STATIC_ROOT=str(static_root), **assignments
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (static_root / "staticfiles.json").is_file()


def test_the_entry_point_runs_manage_commands(tmp_path):
    result = subprocess.run(  # noqa: S603 (our own script)
        [str(DEPLOY / "container-entrypoint.sh"), "manage", "check"],
        cwd=tmp_path,  # the script finds the code from its own place
        env=_clean_env(DESKOPS_VAR_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_the_readme_documents_every_deployment_variable():
    readme = (ROOT / "README.md").read_text()
    gunicorn = set(re.findall(r'"(GUNICORN_[A-Z_]+)"', (DEPLOY / "gunicorn.conf.py").read_text()))
    names = {*env_example(), *gunicorn, "TRUSTED_PROXIES", "CELERY_REGION_QUEUES"}
    names |= {"DESKOPS_WS_BIND", "DESKOPS_WS_PORT", "PROMETHEUS_MULTIPROC_DIR"}
    missing = sorted(name for name in names if f"`{name}`" not in readme)
    assert missing == [], missing
