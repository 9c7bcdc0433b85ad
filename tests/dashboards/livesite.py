"""A running site for browser tests, screenshots and the latency benchmark.

Daphne runs as a subprocess on a free port against the test database; this process publishes
into the same Redis channel layer (a database of its own) through `wams.live`, like the pdc.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, connections
from django.test import override_settings

from tests.dashboards.synthetic import SyntheticGrid, feed_live
from wams import live
from wams.grid.models import Pmu

T = TypeVar("T")
REDIS_DB = 13
# redis-py's 5 s default socket timeout equals channels-redis' 5 s blocking pop: raise it.
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}?socket_timeout=30"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "pw-123456"


def redis_available() -> bool:
    """Tell whether the Redis server answers."""
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5).ping())
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


def free_port() -> int:
    """Return a TCP port free on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url() -> str:
    """Return a URL of the database this (test) process uses, for the server subprocess."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    user = db.get("USER") or "postgres"
    return f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run fn in a worker thread, where no event loop runs (ORM and async_to_sync are safe there)."""

    def call() -> T:
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()  # the thread ends: leave no database session behind

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result(timeout=60)


def seed_history(pmus: list[Pmu], grid: SyntheticGrid, start_s: float, end_s: float) -> int:
    """Store the synthetic grid's samples of [start_s, end_s) in the historian; return samples stored."""
    import numpy as np

    from dashboards.history import bus_base_v
    from wams.historian.blocks import SampleBlock
    from wams.historian.services import ingest

    t_s = np.arange(np.ceil(start_s * grid.rate_fps), np.floor(end_s * grid.rate_fps)) / grid.rate_fps
    payload = grid.snapshot(t_s)
    stored = 0
    for pmu in pmus:
        values = payload["pmus"][str(pmu.pk)]
        if values["frequency_hz"][0] is None:
            continue
        magnitude_v = np.asarray(values["magnitude_pu"]) * bus_base_v(pmu)
        phasor = magnitude_v * np.exp(1j * np.radians(np.asarray(values["angle_deg"])))
        block = SampleBlock(
            pmu_id=pmu.pk,
            timestamp_us=np.round(t_s * 1e6).astype(np.int64),
            stat=np.zeros(len(t_s), dtype=np.uint16),
            frequency_hz=np.asarray(values["frequency_hz"]),
            rocof_hz_per_s=np.asarray(values["rocof_hz_per_s"]),
            phasors=phasor[:, None],
        )
        stored += ingest(block)
    return stored


@contextlib.contextmanager
def redis_channel_layer() -> Iterator[None]:
    """Point this process's channel layer at the site's Redis database (flushed first)."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    layers = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
    with override_settings(CHANNEL_LAYERS=layers):
        yield


class Server:
    """Daphne serving wams.asgi on a free port, as a subprocess."""

    def __init__(self, var_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",  # same password hasher as the test process
            "SECRET_KEY": "browser-test-secret",
            "DEBUG": "0",
            "DATABASE_URL": database_url(),
            "REDIS_URL": REDIS_URL,
            "WAMS_VAR_DIR": str(var_dir),
            "LOG_LEVEL": "WARNING",
            "WAMS_PDC_WAIT_TIME_MS": str(settings.WAMS_PDC_WAIT_TIME_MS),
            **(extra_env or {}),
        }
        self.log = open(var_dir / "daphne.log", "wb")  # noqa: SIM115 - closed in stop()
        command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "wams.asgi:application"]
        self.process = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=self.log, stderr=self.log)
        self.wait_ready()

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Wait until the login page answers."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(self.base_url + "/accounts/login/", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("daphne did not answer in time")

    def stop(self) -> None:
        """Stop the server."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class Feed:
    """Publish synthetic snapshots (and link states) like the pdc, from a background thread."""

    def __init__(self, grid: SyntheticGrid, streams: list[tuple[int, str]], wait_time_ms: float = 100.0) -> None:
        self.grid = grid
        self.streams = streams
        self.wait_time_ms = wait_time_ms
        self.published: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()
        self.task = asyncio.run_coroutine_threadsafe(self.run(), self.loop)

    def serve(self) -> None:
        """Run the feed's loop in its thread, and close it there (channels-redis flushes on close)."""
        self.loop.run_forever()
        self.loop.close()

    async def run(self) -> int:
        """Feed until stopped."""
        self.stop_event = asyncio.Event()
        return await feed_live(
            self.grid, self.streams, self.stop_event, wait_time_ms=self.wait_time_ms, on_publish=self.published.append
        )

    def publish(self, group: str, event_type: str, payload: dict[str, Any]) -> None:
        """Publish one event from the feed's loop."""
        asyncio.run_coroutine_threadsafe(live.apublish(group, event_type, payload), self.loop).result(timeout=10)

    def stop(self) -> int:
        """Stop feeding; return how many snapshots were published."""
        while self.stop_event is None:
            time.sleep(0.01)
        self.loop.call_soon_threadsafe(self.stop_event.set)
        sent = self.task.result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        return sent


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Launch Debian's chromium headless through Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def wait_for(page: Any, expression: str, timeout: float = 10_000) -> Any:
    """Wait until a JavaScript expression is truthy on the page; return its value.

    Playwright's wait_for_function compiles its predicate with eval inside the page, which the
    site's Content-Security-Policy refuses; page.evaluate runs through DevTools and is allowed.
    """
    deadline = time.monotonic() + timeout / 1000
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{expression!r} still false after {timeout:.0f} ms at {page.url}")
        page.wait_for_timeout(50)


def login(browser: Any, base_url: str, username: str, viewport: tuple[int, int] = (1600, 1000)) -> Any:
    """Open a fresh context, log in and return the page (on the overview)."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    page.goto(base_url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    try:
        page.wait_for_url(base_url + "/", timeout=15_000)
    except Exception as exc:
        raise AssertionError(f"login as {username} failed at {page.url}: {page.inner_text('main')[:300]}") from exc
    return page


@dataclass
class Site:
    """The running site and what the tests need to know about it."""

    server: Server
    feed: Feed
    grid: SyntheticGrid
    browser: Any
    pmus: dict[int, Pmu]  # by bus number
    blocker: Any

    def db(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ORM code in a worker thread (no event loop there) with database access allowed."""
        with self.blocker.unblock():
            return off_loop(fn, *args, **kwargs)

    @property
    def url(self) -> str:
        return self.server.base_url
