"""Settings come from the environment; production refuses unsafe defaults."""

import subprocess

import pytest

from tests.helpers import settings_in_fresh_interpreter


def load_settings(**env) -> subprocess.CompletedProcess:
    return settings_in_fresh_interpreter(
        "s.DEBUG, s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, "
        "s.CHANNEL_LAYERS['default']['BACKEND'], s.AUTHENTICATION_BACKENDS[0]",
        **env,
    )


def test_defaults_are_the_embedded_parts(tmp_path):
    result = load_settings(DESKOPS_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "True",
        "django.db.backends.sqlite3",
        f"sqla+sqlite:///{tmp_path}/broker.sqlite3",
        "channels.layers.InMemoryChannelLayer",
        "django.contrib.auth.backends.ModelBackend",
    ]


def test_environment_switches_to_production_parts(tmp_path):
    result = load_settings(
        DESKOPS_VAR_DIR=str(tmp_path),
        DESKOPS_PRODUCTION="true",
        DJANGO_SECRET_KEY="k" * 50,
        DJANGO_ALLOWED_HOSTS="deskops.example.com",
        DESKOPS_CREDENTIALS_KEY="c" * 40,
        DATABASE_URL="postgres://deskops@db.example.com:5432/deskops",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        CHANNELS_REDIS_URL="redis://127.0.0.1:6379/1",
        AUTH_LDAP_SERVER_URI="ldap://ldap.example.com",
        AUTH_LDAP_USER_SEARCH_BASE="ou=people,dc=example,dc=com",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "False",
        "django.db.backends.postgresql",
        "redis://127.0.0.1:6379/0",
        "channels_redis.core.RedisChannelLayer",
        "django_auth_ldap.backend.LDAPBackend",
    ]


@pytest.mark.parametrize(
    "env, missing",
    [
        ({"DJANGO_ALLOWED_HOSTS": "deskops.example.com"}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "k" * 50}, "DJANGO_ALLOWED_HOSTS"),
    ],
)
def test_production_refuses_to_start_without_its_secrets(tmp_path, env, missing):
    result = load_settings(DESKOPS_VAR_DIR=str(tmp_path), DESKOPS_PRODUCTION="true", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and missing in result.stderr
