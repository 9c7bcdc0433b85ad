import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from wams.env import env_bool, env_database, env_int, env_list, env_redis_url, env_str

ROOT = Path(__file__).resolve().parents[2]


def test_missing_required_string_names_the_variable():
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY must be set"):
        env_str("SECRET_KEY", environ={})


def test_bad_boolean_says_what_is_accepted():
    with pytest.raises(ImproperlyConfigured, match=r"DEBUG='maybe' is not a boolean"):
        env_bool("DEBUG", False, environ={"DEBUG": "maybe"})
    assert env_bool("DEBUG", False, environ={"DEBUG": "Yes"}) is True


def test_bad_integer_and_range_are_reported():
    with pytest.raises(ImproperlyConfigured, match="is not an integer"):
        env_int("PORT", 8000, environ={"PORT": "eighty"})
    with pytest.raises(ImproperlyConfigured, match="above the maximum 65535"):
        env_int("PORT", 8000, maximum=65535, environ={"PORT": "70000"})
    with pytest.raises(ImproperlyConfigured, match="below the minimum 0"):
        env_int("WAMS_PDC_WAIT_TIME_MS", 100, minimum=0, environ={"WAMS_PDC_WAIT_TIME_MS": "-5"})


def test_empty_allowed_hosts_is_an_error():
    with pytest.raises(ImproperlyConfigured, match="ALLOWED_HOSTS is set but empty"):
        env_list("ALLOWED_HOSTS", ["localhost"], environ={"ALLOWED_HOSTS": " , "})
    assert env_list("ALLOWED_HOSTS", [], environ={"ALLOWED_HOSTS": "a.example, b.example"}) == [
        "a.example",
        "b.example",
    ]


def test_redis_url_must_be_a_redis_url():
    with pytest.raises(ImproperlyConfigured, match="is not a redis://host:port/db URL"):
        env_redis_url(environ={"REDIS_URL": "http://localhost:6379"})
    assert env_redis_url(environ={}) is None
    assert env_redis_url(environ={"REDIS_URL": "redis://127.0.0.1:6379/1"}) == "redis://127.0.0.1:6379/1"


def test_database_url_scheme_is_checked(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="unsupported scheme 'mysql'"):
        env_database("DATABASE_URL", tmp_path / "x.sqlite3", environ={"DATABASE_URL": "mysql://u@h/db"})
    with pytest.raises(ImproperlyConfigured, match="names no database"):
        env_database("DATABASE_URL", tmp_path / "x.sqlite3", environ={"DATABASE_URL": "postgres://u@127.0.0.1:5432"})
    default = env_database("DATABASE_URL", tmp_path / "var" / "x.sqlite3", environ={})
    assert default["ENGINE"] == "django.db.backends.sqlite3"
    assert (tmp_path / "var").is_dir()
    pg = env_database(
        "DATABASE_URL", tmp_path / "x", environ={"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test"}
    )
    assert pg["ENGINE"] == "django.db.backends.postgresql" and pg["NAME"] == "test"


def run_check(env):
    base = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "wams.settings", "WAMS_VAR_DIR": "/tmp/wams-env-test"}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=base | env, capture_output=True, text=True, timeout=120
    )


def test_settings_refuse_to_start_without_secret_key_unless_debug():
    result = run_check({})
    assert result.returncode != 0
    assert "SECRET_KEY must be set unless DEBUG=1" in result.stderr
    assert run_check({"DEBUG": "1"}).returncode == 0


def test_settings_refuse_a_shard_outside_the_shard_count():
    result = run_check({"SECRET_KEY": "k", "WAMS_PDC_SHARD": "2", "WAMS_PDC_SHARDS": "2"})
    assert result.returncode != 0
    assert "WAMS_PDC_SHARD=2 must be below WAMS_PDC_SHARDS=2" in result.stderr


def test_choice_outside_the_allowed_values_is_named():
    from wams.env import env_choice

    with pytest.raises(ImproperlyConfigured, match="WAMS_HISTORIAN_COMPRESSION='gzip' is not one of zstd, zlib, lzma"):
        env_choice(
            "WAMS_HISTORIAN_COMPRESSION",
            "zstd",
            ("zstd", "zlib", "lzma"),
            environ={"WAMS_HISTORIAN_COMPRESSION": "gzip"},
        )
