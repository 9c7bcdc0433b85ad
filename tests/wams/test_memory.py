"""Malloc arenas capped and freed pages returned: the setting, and what it does in a real process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from wams.memory import DEFAULT_ARENAS, arenas_setting, limit_arenas, trim


def test_arenas_setting_defaults_to_two_and_refuses_what_is_not_a_count():
    assert arenas_setting({}) == DEFAULT_ARENAS
    assert arenas_setting({"WAMS_MALLOC_ARENAS": " 0 "}) == 0
    assert arenas_setting({"WAMS_MALLOC_ARENAS": "4"}) == 4
    for bad in ("-1", "two", "1.5"):
        with pytest.raises(SystemExit, match="WAMS_MALLOC_ARENAS must be a whole number"):
            arenas_setting({"WAMS_MALLOC_ARENAS": bad})


def test_a_bad_arena_setting_stops_manage_py_with_the_message():
    answer = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env={"WAMS_MALLOC_ARENAS": "lots", "PATH": "/usr/bin:/bin", "SECRET_KEY": "x"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert answer.returncode != 0
    assert "WAMS_MALLOC_ARENAS must be a whole number" in answer.stderr


CHILD = """
import ctypes, ctypes.util, os, sys, tempfile, threading
import wams  # every WAMS process (manage.py, ASGI, Celery) applies WAMS_MALLOC_ARENAS at start
from wams.memory import trim
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
barrier = threading.Barrier(8)
def worker():
    # ctypes calls drop the GIL: the threads meet in malloc at once, as sqlite, zlib or TLS code do
    barrier.wait()
    blocks = [libc.malloc(100_000) for _ in range(100)]
    for block in blocks[::2]:
        libc.free(block)
    barrier.wait()
threads = [threading.Thread(target=worker) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
trim()
libc.fopen.restype = ctypes.c_void_p
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
path = tempfile.mktemp()
fp = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, fp)
libc.fclose(fp)
print(open(path).read().count("<heap nr="))
os.unlink(path)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc arenas")
def test_eight_threads_in_malloc_at_once_share_the_default_two_arenas():
    def arenas(setting: str) -> int:
        env = {**os.environ, "WAMS_MALLOC_ARENAS": setting}
        out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, env=env)
        assert out.returncode == 0, out.stderr
        return int(out.stdout.strip().splitlines()[-1])

    capped, uncapped = arenas(""), arenas("0")  # the default, and glibc's own
    assert capped <= 2
    assert uncapped > 2  # glibc's default gives the contending threads arenas of their own


def test_trim_and_limit_answer_on_this_platform():
    assert isinstance(trim(), bool)
    assert limit_arenas(0) is False  # 0 leaves glibc's default
