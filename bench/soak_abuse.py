"""Soak the embedded demo under abuse for minutes: no 5xx, the output stream and the operator keep working.

Runs the whole system as `make demo` does (demo topology, simulator, `manage.py run_embedded` on SQLite)
in a fresh var directory with free ports (tests/wams/embedded.py), seeds stored history and an output
stream (tests/wams/embedded_seed.py), creates application tokens for the TSO (netso) and the DSO (pvdso)
and a `fuzzer` operator account, then for `--minutes` runs at the same time, bounded in rate and count
and only against 127.0.0.1:

- an HTTP fuzzer over every API endpoint (random valid and invalid parameters, repeated parameters,
  huge values, deep JSON, bad encodings, unknown ids, wrong methods, random tokens), every operator,
  control and admin page (as the fuzzer operator, the DSO operator, the admin and anonymous), bad logins
  and raw malformed requests. Answers are counted by status; a 5xx, a connection error or a timeout is a
  failure and the request is saved to failures.jsonl. 429 and 503 with Retry-After are fine; Retry-After
  is honoured on about half of them (that worker waits) and ignored on the rest;
- a C37.118 abuser on the pdc's output server: valid command frames, then mutated ones (bit flips,
  truncated, bad CRC, huge FRAMESIZE, random bytes, slow-loris partial frames, wrong IDCODE, frames of
  other types, CFG floods without reading) from a few clients, and now and then a crowd of connections
  up to `--max-connections`, half of them subscribed and never reading;
- a normal downstream PDC reading the output stream (frames, longest gap) and a normal operator loading
  the overview and the API's latest values every `--operator-period` seconds (these must keep working);
- every 10 s: RSS of the embedded process and the simulator (/proc), the pdc's link states (staff
  /healthz) and the counts, into timeline.jsonl.

The site runs with WAMS_API_RATE and WAMS_PAGE_RATE of 120/m (`--api-rate`, `--page-rate`), so that the
fuzzer's tokens and users meet their limits while the normal operator (12 reads a minute) stays under them.
The bad logins lock 127.0.0.1 out of logging in (django-axes, "username,ip"): every session is opened first.

Writes never switch a stream off, execute a command, arm a scheme or delete anything but the fuzzer's
own subscriptions, so "links up" and the output stream measure the system, not the fuzzer's orders.
Subscriptions' webhooks go to a sink on 127.0.0.1 (allowed through WAMS_WEBHOOK_ALLOW).

    .venv/bin/python bench/soak_abuse.py --minutes 2                  # debug run
    .venv/bin/python bench/soak_abuse.py --minutes 30 --write         # appends a section to BENCHMARKS.md

Prints a summary (and one JSON line); logs, failures.jsonl, timeline.jsonl and result.json go to
--var-dir (default var/soak-abuse/<UTC time>/). Exits 1 when anything failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import http.server
import io
import itertools
import json
import math
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.wams.embedded import (  # noqa: E402
    PASSWORD,
    EmbeddedSite,
    free_port,
    manage,
    process_memory_kib,
    running,
    watch_output,
)

try:  # the fleet on free port ranges, so that the soak can run beside another embedded system
    from tests.wams.embedded import prepare_isolated as prepare_site
except ImportError:  # pragma: no cover - older helpers: the demo's fixed fleet ports
    from tests.wams.embedded import prepare as prepare_site

from wams.synchrophasor import CommandFrame, ConfigFrame, decode_frame  # noqa: E402
from wams.synchrophasor.crc import crc_ccitt  # noqa: E402
from wams.synchrophasor.encode import encode_frame  # noqa: E402
from wams.synchrophasor.frames import Command, HeaderFrame  # noqa: E402
from wams.synchrophasor.stream import StreamReader  # noqa: E402

OUTPUT_IDCODE = 9001
OUTPUT_FPS = 30
SEED_VALUES = 1_000_000  # stored history: about this many values over every demo PMU
READ_LIMIT = 4 << 20  # bytes of an answer read before the connection is dropped (long exports)
MONITOR_PERIOD_S = 10.0
MAX_LIVE_SUBSCRIPTIONS = 5  # the fuzzer deletes its oldest valid subscription beyond this
BAD_LOGIN_PERIOD_S = 5.0  # at most one bad login per this many seconds
RSS_BOUND_STEP_MIB = 50
TWISTED_MAX_LINE = 16384  # twisted.protocols.basic.LineReceiver.MAX_LENGTH: longer request lines get no answer


# site setup (runs inside `manage.py shell -c`) -------------------------------------------------


def setup_site() -> None:
    """Create the soak's tokens and fuzzer account; print the ids and admin URLs the fuzzer uses as JSON."""
    from django.contrib import admin
    from django.db import transaction
    from django.urls import NoReverseMatch, reverse

    from wams.api.auth import issue_token
    from wams.api.models import Application
    from wams.control.models import Command as ControlCommand
    from wams.control.models import Scheme
    from wams.grid.management.commands.load_demo import create_account
    from wams.grid.models import ControllableDevice, Organisation, Pmu, Stream, Substation
    from wams.grid.services import ROLE_OPERATOR

    tokens = {}
    for key, code in (("normal", "netso"), ("tso", "netso"), ("dso", "pvdso")):
        with transaction.atomic():
            application = Application.objects.create(
                name=f"soak {key}", organisation=Organisation.objects.get(code=code)
            )
            tokens[key] = issue_token(application.pk)
    create_account("fuzzer", PASSWORD, ROLE_OPERATOR, "netso", False)
    admin_urls: list[str] = []
    for model in admin.site._registry:
        info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        for name in ("changelist", "add"):
            with contextlib.suppress(NoReverseMatch):
                admin_urls.append(reverse(f"{info}_{name}"))
        for pk in [*list(model._default_manager.values_list("pk", flat=True)[:2]), 987654321]:
            for name in ("change", "history", "delete"):
                with contextlib.suppress(NoReverseMatch):
                    admin_urls.append(reverse(f"{info}_{name}", args=[pk]))
    found = {
        "tokens": tokens,
        "pmus": list(Pmu.objects.values_list("pk", flat=True)),
        "streams": {str(pk): code for pk, code in Stream.objects.values_list("pk", "owner__code")},
        "substations": list(Substation.objects.values_list("pk", flat=True)),
        "devices": list(ControllableDevice.objects.values_list("pk", flat=True)),
        "schemes": list(Scheme.objects.values_list("pk", flat=True)),
        "commands": list(ControlCommand.objects.values_list("pk", flat=True)),
        "admin_urls": admin_urls,
    }
    print(json.dumps(found))


# counting ---------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Counts shared by every thread of the run (one lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    by_status: Counter[str] = field(default_factory=Counter)
    by_group: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    failures: int = 0
    retry_after: Counter[str] = field(default_factory=Counter)  # honoured / ignored / missing
    frames: Counter[str] = field(default_factory=Counter)  # the C37.118 abuser's counts
    operator: Counter[str] = field(default_factory=Counter)
    operator_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    notes: list[str] = field(default_factory=list)

    def add(self, group: str, status: str) -> None:
        with self.lock:
            self.by_status[status] += 1
            self.by_group[group][status] += 1

    def count(self, counter: Counter[str], key: str, n: int = 1) -> None:
        with self.lock:
            counter[key] += n


class FailureLog:
    """Append each failing request with its answer to failures.jsonl (the first few also kept in memory)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.first: list[dict[str, Any]] = []

    def write(self, record: dict[str, Any]) -> None:
        record = {"at": datetime.now(UTC).isoformat(timespec="milliseconds"), **record}
        with self.lock, self.path.open("a") as out:
            out.write(json.dumps(record, default=repr) + "\n")
            if len(self.first) < 20:
                self.first.append(record)


class Pacer:
    """A token bucket shared by threads: at most `rate` acquisitions per second on average."""

    def __init__(self, rate: float) -> None:
        self.period_s = 1.0 / rate
        self.next_s = time.monotonic()
        self.lock = threading.Lock()

    def wait(self, stop: threading.Event) -> bool:
        """Block until the next slot; return False once `stop` is set."""
        with self.lock:
            now = time.monotonic()
            slot = max(self.next_s, now)
            self.next_s = slot + self.period_s
        return not stop.wait(max(0.0, slot - time.monotonic()))


# HTTP -------------------------------------------------------------------------------------------


@dataclass
class Req:
    """One request of the fuzzer: `raw` bytes go over a socket as they are (malformed HTTP)."""

    group: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    raw: bytes | None = None
    closed_is_fine: bool = False  # malformed input the server may answer by closing the connection

    def describe(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "method": self.method,
            "path": self.path[:4000],
            "headers": {k: v[:300] for k, v in self.headers.items()},
            "body": self.body[:2000].decode("latin-1"),
            "raw": self.raw[:2000].decode("latin-1") if self.raw is not None else None,
        }


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    head: bytes
    elapsed_s: float


def send(port: int, req: Req, timeout_s: float, keep: int = 2000) -> Answer:
    """Send one request on a new connection; read at most READ_LIMIT bytes of the answer, keep the first `keep`."""
    started = time.monotonic()
    if req.raw is not None:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.sendall(req.raw)
            data = b""
            while len(data) < 65536:
                piece = sock.recv(65536)
                if not piece:
                    break
                data += piece
                if b"\r\n\r\n" in data:
                    break
        match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
        if match is None:
            raise ConnectionError(f"no HTTP answer ({len(data)} bytes)")
        return Answer(int(match.group(1)), {}, data[:2000], time.monotonic() - started)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        headers = {"Connection": "close", **req.headers}
        conn.request(req.method, req.path, body=req.body or None, headers=headers)
        answer = conn.getresponse()
        head = answer.read(keep)
        total = len(head)
        while total < READ_LIMIT:
            piece = answer.read(1 << 16)
            if not piece:
                break
            total += len(piece)
        return Answer(answer.status, {k.lower(): v for k, v in answer.getheaders()}, head, time.monotonic() - started)
    finally:
        conn.close()


def cookie_header(jar: CookieJar) -> tuple[str, str]:
    """Return the Cookie header of a jar and its CSRF token."""
    cookies = {c.name: c.value or "" for c in jar}
    return "; ".join(f"{k}={v}" for k, v in cookies.items()), cookies.get("csrftoken", "")


def jar_of(opener: Any) -> CookieJar:
    for handler in opener.handlers:
        if hasattr(handler, "cookiejar"):
            return handler.cookiejar  # type: ignore[no-any-return]
    raise RuntimeError("the opener holds no cookie jar")


@dataclass
class Identity:
    """Who a page request is sent as: a session (cookie, CSRF token) or anonymous."""

    name: str
    cookie: str = ""
    csrf: str = ""

    def headers(self, with_csrf: bool = False, port: int = 0) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.cookie:
            out["Cookie"] = self.cookie
        if with_csrf and self.csrf:
            out["X-CSRFToken"] = self.csrf
            out["Origin"] = f"http://127.0.0.1:{port}"
        return out


# the request catalogue -------------------------------------------------------------------------

JUNK = [
    "", " ", "abc", "-1", "0", "1e309", "nan", "inf", "-inf", str(2**63), str(10**30), "9" * 3000, "%00",
    "'; DROP TABLE grid_pmu;--", "<script>alert(1)</script>", "../../etc/passwd", "\u202egnp.exe", "ß" * 200,
    "2026-13-45T99:99:99Z", "1970-01-01T00:00:00+25:00", "0x10", "1,2,3", ",,,,", "true", "null", "[]", "{}",
    "\ud7ff\ufffd", "\x00", "1.5", "+1", "\uff11\uff12", "\u0663",
]  # fmt: skip
BAD_PERCENT = ["%ff%fe", "%c0%af", "%ed%a0%80", "%00", "%e2%82", "%", "%zz", "%u202e"]
QUANTITIES = [
    "frequency_hz", "rocof_hz_per_s", "magnitude", "angle_deg", "phasor_0_magnitude", "phasor_1_angle_deg",
    "phasor_9_magnitude", "analog_0", "analog_7", "digital_0", "digital_3", "stat", "phasor_-1_magnitude",
    "phasor_99999999999999999999_magnitude", "frequency", "voltage",
]  # fmt: skip
EVENT_KINDS = ["frequency", "rocof", "voltage", "angle", "oscillation", "fault", "islanding", "bogus"]
STATES = ["active", "cleared", "acknowledged", "closed", "open", "all", "bogus"]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "FOO"]


class Catalogue:
    """Random requests over every endpoint and page, built from what the site holds."""

    def __init__(self, rng: random.Random, port: int, site: dict[str, Any], window: dict[str, Any]) -> None:
        self.rng = rng
        self.port = port
        self.site = site
        self.window = window
        self.identities: dict[str, Identity] = {"anonymous": Identity("anonymous")}
        self.subscriptions: dict[str, list[int]] = {"tso": [], "dso": []}
        self.lock = threading.RLock()  # next() takes it, and so do the subscription requests it builds
        self.webhook = ""

    # values -----------------------------------------------------------------------------------
    def junk(self) -> str:
        if self.rng.random() < 0.1:
            return "".join(chr(self.rng.randrange(1, 0x2FFF)) for _ in range(self.rng.randrange(1, 40)))
        return self.rng.choice(JUNK)

    def pmu_id(self) -> str:
        r = self.rng.random()
        if r < 0.6:
            return str(self.rng.choice(self.site["pmus"]))
        if r < 0.8:
            return str(self.rng.choice([0, 987654, 2**62, 2**63, 2**64 + 1, 10**30]))
        return self.junk()

    def time_value(self, which: str) -> str:
        w = self.window
        r = self.rng.random()
        if r < 0.35:
            t = self.rng.uniform(w["start_s"], w["end_s"])
            return str(round(t, self.rng.choice([0, 3])))
        if r < 0.6:
            t = self.rng.uniform(w["start_s"], time.time())
            return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S") + self.rng.choice(["Z", "+00:00", ""])
        if r < 0.75:
            return str(round(time.time() - self.rng.uniform(0, 600)))
        if r < 0.85:
            return self.rng.choice(["0", "1e10", "99999999999", "-5", "1e300", "1970-01-01T00:00:00Z"])
        return self.junk()

    def token(self) -> tuple[str, str]:
        """Return (who, Authorization header value)."""
        r = self.rng.random()
        if r < 0.55:
            return "tso", f"Bearer {self.site['tokens']['tso']}"
        if r < 0.8:
            return "dso", f"Bearer {self.site['tokens']['dso']}"
        real = self.site["tokens"]["tso"]
        return "bad", self.rng.choice(
            [
                "",
                "Bearer",
                "Bearer ",
                f"Bearer {real[:-3]}xyz",
                f"bearer {real}",
                f"Basic {real}",
                "Bearer " + "A" * 8000,
                "Bearer wams_000000000000_" + "x" * 43,
                f"Bearer {real} {real}",
                "Bearer \u00e9\u00e9",
                f"Token {self.rng.getrandbits(128):x}",
            ]
        )

    def query(self, pairs: list[tuple[str, str]]) -> str:
        """Encode query pairs, sometimes with raw bad percent escapes appended."""
        text = urllib.parse.urlencode(pairs)
        if self.rng.random() < 0.1:
            text += f"&{self.rng.choice(['pmu', 'quantity', 'x', 'start'])}={self.rng.choice(BAD_PERCENT)}"
        if self.rng.random() < 0.03:
            text += "&" + "&".join(f"p{i}=1" for i in range(2000))
        return text

    def api(self, group: str, method: str, path: str, body: bytes = b"", ctype: str = "") -> Req:
        _who, auth = self.token()
        headers = {"Authorization": auth} if auth else {}
        if ctype:
            headers["Content-Type"] = ctype
        return Req(f"api {group}", method, path, headers, body)

    # API ------------------------------------------------------------------------------------
    def api_pmus(self) -> Req:
        method = "GET" if self.rng.random() < 0.8 else self.rng.choice(METHODS)
        return self.api("pmus", method, "/api/v1/pmus?" + self.query([("x", self.junk())]))

    def api_events(self) -> Req:
        pairs: list[tuple[str, str]] = []
        if self.rng.random() < 0.6:
            pairs.append(("since", self.time_value("since")))
        for _ in range(self.rng.choice([0, 1, 1, 2, 40])):
            pairs.append(("kind", self.rng.choice(EVENT_KINDS)))
        for _ in range(self.rng.choice([0, 1, 3])):
            pairs.append(("state", self.rng.choice(STATES)))
        if self.rng.random() < 0.5:
            pairs.append(("limit", self.rng.choice(["1", "100", "1000", "1001", "0", "-5", str(10**30), "abc", ""])))
        method = "GET" if self.rng.random() < 0.9 else self.rng.choice(METHODS)
        return self.api("events", method, "/api/v1/events?" + self.query(pairs))

    def api_data(self) -> Req:
        pairs = [("pmu", self.pmu_id()) for _ in range(self.rng.choice([0, 1, 1, 2, 5, 51]))]
        if self.rng.random() < 0.2:
            pairs.append(("pmu", ",".join(str(p) for p in self.site["pmus"])))
        if self.rng.random() < 0.05:
            pairs += [("pmu", str(self.site["pmus"][0]))] * 200  # one PMU asked many times
        for _ in range(self.rng.choice([0, 1, 1, 2, 4, 100])):
            pairs.append(("quantity", self.rng.choice(QUANTITIES) if self.rng.random() < 0.85 else self.junk()))
        r = self.rng.random()
        if r < 0.55:
            pairs.append(("start", self.time_value("start")))
            if self.rng.random() < 0.8:
                pairs.append(("end", self.time_value("end")))
        elif r < 0.6:
            pairs.append(("end", self.time_value("end")))
        if self.rng.random() < 0.4:
            pairs.append(("max_points", self.rng.choice(["1", "2000", "100000", "100001", "0", str(10**20), "x"])))
        method = "GET" if self.rng.random() < 0.9 else self.rng.choice(METHODS)
        return self.api("data", method, "/api/v1/data?" + self.query(pairs))

    def subscription_body(self, who: str) -> tuple[bytes, str, bool]:
        """Return (body, content type, valid) of a subscription to create."""
        r = self.rng.random()
        if r < 0.35:
            body: dict[str, Any] = {
                "kind": "periodic",
                "period_s": self.rng.choice([1, 5, 60]),
                "webhook_url": self.webhook,
            }
            if self.rng.random() < 0.5:
                body["pmus"] = self.rng.sample(self.site["pmus"], 2)
            if self.rng.random() < 0.5:
                body["quantities"] = self.rng.sample(QUANTITIES[:6], 2)
            if self.rng.random() < 0.1:
                body["name"] = self.rng.choice(["\ud800", "x" * 101, "n\u0000ul", "ok"])
            return json.dumps(body).encode(), "application/json", True
        if r < 0.45:
            body = {"kind": "event", "event_kinds": [self.rng.choice(EVENT_KINDS)], "webhook_url": self.webhook}
            body["min_severity"] = self.rng.choice(["info", "warning", "critical", "bogus"])
            return json.dumps(body).encode(), "application/json", True
        depth = self.rng.choice([33, 200, 20_000, 40_000])
        bad: list[tuple[bytes, str]] = [
            (b"[" * depth + b"]" * depth, "application/json"),
            (b'{"kind": ' * 40 + b"1" + b"}" * 40, "application/json"),
            (b'{"kind": "periodic", "webhook_url": "\xff\xfe"}', "application/json"),
            ('{"kind": "periodic"}'.encode("utf-16"), "application/json"),
            (b"not json", "application/json"),
            (b'{"kind": "periodic", "period_s": 1e999, "webhook_url": "http://127.0.0.1/"}', "application/json"),
            (b'{"kind": "periodic", "period_s": NaN}', "application/json"),
            (
                json.dumps({"kind": "periodic", "webhook_url": "http://127.0.0.1:1/x", "period_s": 1}).encode(),
                "application/json",
            ),
            (json.dumps({"kind": "periodic", "webhook_url": "file:///etc/passwd"}).encode(), "application/json"),
            (json.dumps({"kind": "periodic", "webhook_url": "http://169.254.169.254/"}).encode(), "application/json"),
            (
                json.dumps({"kind": "periodic", "pmus": [10**30], "webhook_url": self.webhook}).encode(),
                "application/json",
            ),
            (json.dumps({"kind": "periodic", "pmus": "1", "webhook_url": self.webhook}).encode(), "application/json"),
            (json.dumps({"kind": "periodic", "bogus": 1}).encode(), "application/json"),
            (json.dumps([1, 2, 3]).encode(), "application/json"),
            (b"null", "application/json"),
            (b"", "application/json"),
            (b"{" + b'"a": 1, ' * 12_000 + b'"b": 2}', "application/json"),  # over 64 KB
            (b"kind=periodic", "application/x-www-form-urlencoded"),
            (b'{"kind": "periodic"}', "text/plain"),
            (b'{"kind": "periodic"}', "application/json; charset=latin-1"),
        ]
        data, ctype = self.rng.choice(bad)
        return data, ctype, False

    def api_subscriptions(self) -> Req:
        if self.rng.random() < 0.3:
            return self.api("subscriptions", self.rng.choice(["GET", "PUT", "DELETE"]), "/api/v1/subscriptions")
        who = self.rng.choice(["tso", "dso"])
        body, ctype, _valid = self.subscription_body(who)
        req = Req("api subscriptions", "POST", "/api/v1/subscriptions", {"Content-Type": ctype}, body)
        req.headers["Authorization"] = f"Bearer {self.site['tokens'][who]}"
        req.headers["X-Soak-Who"] = who
        return req

    def api_subscription(self) -> Req:
        who = self.rng.choice(["tso", "dso"])
        with self.lock:
            own = list(self.subscriptions[who])
            other = list(self.subscriptions["dso" if who == "tso" else "tso"])
        r = self.rng.random()
        if r < 0.4 and own:
            target = str(self.rng.choice(own))
        elif r < 0.6 and other:
            target = str(self.rng.choice(other))  # another application's: 404
        else:
            target = self.rng.choice(["0", "1", "987654321", "9" * 18, "9" * 19, "abc", "-1", "1.0", "%ff"])
        method = self.rng.choice(["GET", "GET", "DELETE", "POST", "PATCH"])
        if method == "DELETE" and target in map(str, own):
            with self.lock:
                if int(target) in self.subscriptions[who]:
                    self.subscriptions[who].remove(int(target))
        req = Req("api subscription", method, f"/api/v1/subscriptions/{target}")
        req.headers["Authorization"] = f"Bearer {self.site['tokens'][who]}"
        return req

    def multipart(self, files: list[tuple[str, bytes]], boundary: str = "soakboundary") -> tuple[bytes, str]:
        out = io.BytesIO()
        for i, (name, data) in enumerate(files):
            out.write(f"--{boundary}\r\n".encode())
            out.write(f'Content-Disposition: form-data; name="f{i}"; filename="{name}"\r\n'.encode())
            out.write(b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n")
        out.write(f"--{boundary}--\r\n".encode())
        return out.getvalue(), f"multipart/form-data; boundary={boundary}"

    def api_fault_records(self) -> Req:
        rng = self.rng
        r = rng.random()
        if r < 0.1:
            return self.api("fault-records", rng.choice(["GET", "PUT"]), "/api/v1/fault-records")
        if r < 0.3:
            cfg = b"STATION,REC,1999\r\n2,1A,1D\r\n1,IA,A,,A,1,0,0,-32767,32767,1,1,P\r\n" + rng.randbytes(
                rng.randrange(0, 200)
            )
            files = [("fault.cfg", cfg), ("fault.dat", rng.randbytes(rng.randrange(0, 4000)))]
        elif r < 0.45:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as archive:
                archive.writestr("x.cfg", rng.randbytes(300))
                archive.writestr("x.dat", rng.randbytes(3000))
                archive.writestr("../../evil.cfg", b"1")
            data = buf.getvalue()
            if rng.random() < 0.5:
                data = data[: rng.randrange(1, len(data))]  # a cut zip
            files = [("burst.zip", data)]
        elif r < 0.55:
            files = [(f"f{i}.cfg", b"x") for i in range(101)]
        elif r < 0.65:
            files = [("\u202e\x00.cfg", rng.randbytes(100))]
        else:
            files = [(rng.choice(["a.cfg", "a.dat", "a.zip", "a.txt", "a"]), rng.randbytes(rng.randrange(0, 20_000)))]
        body, ctype = self.multipart(files)
        if rng.random() < 0.15:
            body = body[: rng.randrange(1, len(body))]  # a cut multipart body
        if rng.random() < 0.1:
            ctype = "multipart/form-data"  # no boundary
        return self.api("fault-records", "POST", "/api/v1/fault-records", body, ctype)

    def api_stream_enabled(self) -> Req:
        """Switch requests that never switch a stream off (unknown id, or another organisation's stream)."""
        rng = self.rng
        streams = self.site["streams"]
        who = rng.choice(["tso", "dso"])
        org = {"tso": "netso", "dso": "pvdso"}[who]
        stream_id = rng.choice(list(streams))
        r = rng.random()
        if r < 0.3:
            body = b'{"enabled": true}'  # on: what it already is
        elif r < 0.5:
            others = [s for s, owner in streams.items() if owner != org]
            if others:
                stream_id = rng.choice(others)  # someone else's: 403 or 404
            body = b'{"enabled": false}'
        elif r < 0.6:
            stream_id = rng.choice(["987654321", "9" * 18, "9" * 19, "0", "abc"])
            body = b'{"enabled": false}'
        else:
            body = rng.choice(
                [b'{"enabled": "false"}', b'{"enabled": 0}', b"[false]", b"false", b"", b"\xff", b"[" * 50 + b"]" * 50]
            )
        method = "POST" if rng.random() < 0.85 else rng.choice(["GET", "PUT", "DELETE"])
        req = Req("api stream-enabled", method, f"/api/v1/streams/{stream_id}/enabled", {}, body)
        req.headers["Authorization"] = f"Bearer {self.site['tokens'][who]}"
        req.headers["Content-Type"] = rng.choice(["application/json"] * 4 + ["text/plain"])
        return req

    def api_unknown(self) -> Req:
        path = self.rng.choice(
            [
                "/api/", "/api/v1/", "/api/v2/pmus", "/api/v1/pmus/1", "/api/v1/data/", "/api/v1/%ff%fe",
                "/api/v1/subscriptions/1/2", "/api/v1/streams/1/enabled/x", "/api/v1/streams/0/enabled",
                "/api/" + "a/" * 500, "/api/v1/pmus?" + "a=" + "b" * 9000, "/api/..%2f..%2fetc/passwd",
            ]
        )  # fmt: skip
        return self.api("unknown", self.rng.choice(METHODS), path)

    # pages ----------------------------------------------------------------------------------
    def page_identity(self) -> Identity:
        names = ["fuzzer", "fuzzer", "dso-operator", "anonymous"]
        return self.identities[self.rng.choice([n for n in names if n in self.identities])]

    def some_id(self, pool: list[int]) -> str:
        r = self.rng.random()
        if r < 0.6 and pool:
            return str(self.rng.choice(pool))
        return self.rng.choice(["0", "987654321", str(2**63), str(10**30), "1" * 40])

    def page(self) -> Req:
        rng = self.rng
        who = self.page_identity()
        pmus = [str(p) for p in rng.sample(self.site["pmus"], rng.choice([1, 2, 5]))]
        window = [("start", self.time_value("start")[:19]), ("end", self.time_value("end")[:19])]
        choices: list[tuple[str, str]] = [
            ("page overview", "/?" + self.query([("replay", "1")] if rng.random() < 0.3 else [])),
            ("page phasors", "/phasors/?" + self.query([("ref", rng.choice([*pmus, self.junk()]))])),
            ("page pmus", "/pmus/"),
            ("page pmu", f"/pmus/{self.some_id(self.site['pmus'])}/"),
            ("page substation", f"/substations/{self.some_id(self.site['substations'])}/"),
            (
                "page events",
                "/events/?"
                + self.query(
                    [
                        ("state", rng.choice(STATES)),
                        ("severity", rng.choice(["", "warning", "x"])),
                        ("page", rng.choice(["1", "2", "0", "-1", "99999", "x"])),
                    ]
                ),
            ),
            ("page event", f"/events/{self.some_id(list(range(1, 30)))}/"),
            (
                "page history",
                "/history/?"
                + self.query(
                    [("pmus", p) for p in pmus]
                    + window
                    + [("quantity", rng.choice([*QUANTITIES[:6], "x"])), ("speed", rng.choice(["1", "10", "0", "x"]))]
                ),
            ),
            (
                "page export",
                "/history/export/?"
                + self.query([("pmus", p) for p in pmus] + window + [("format", rng.choice(["csv", "comtrade", "x"]))]),
            ),
            ("page control", "/control/"),
            ("page device", f"/control/devices/{self.some_id(self.site['devices'])}/"),
            (
                "page device-state",
                f"/control/devices/{self.some_id(self.site['devices'])}/state" + rng.choice(["", "?refresh=1"]),
            ),
            ("page command", f"/control/commands/{self.some_id(self.site['commands'])}/"),
            (
                "page audit",
                "/control/audit/?"
                + self.query(
                    [("outcome", self.junk()), ("origin", self.junk()), ("q", self.junk()), ("page", self.junk())]
                ),
            ),
            ("page healthz", "/healthz"),
            (
                "page login",
                "/accounts/login/?" + self.query([("next", rng.choice(["/", "https://evil.example/", "//evil"]))]),
            ),
            (
                "page static",
                rng.choice(["/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/manage.py", "/static/js/nope.js"]),
            ),
            ("page unknown", rng.choice(["/nope/", "/pmus/abc/", "/events/1/acknowledge/", "/%ff/", "/" + "x" * 5000])),
        ]
        group, path = rng.choice(choices)
        method = "GET" if rng.random() < 0.9 else rng.choice(["HEAD", "OPTIONS", "PUT", "DELETE", "FOO"])
        return Req(f"{group} ({'anon' if who.name == 'anonymous' else 'user'})", method, path, who.headers())

    def control_post(self) -> Req:
        """Control actions that never operate anything: selects with junk, execute/cancel of unknown commands."""
        rng = self.rng
        who = self.identities.get(
            rng.choice(["fuzzer", "fuzzer", "dso-operator", "anonymous"]), self.identities["anonymous"]
        )
        r = rng.random()
        if r < 0.35:
            path = f"/control/devices/{self.some_id(self.site['devices'])}/select"
            form = {"action": rng.choice(["x-open", "", self.junk()]), "value": self.junk(), "reason": self.junk()}
        elif r < 0.55:
            path = f"/control/streams/{self.some_id([int(s) for s in self.site['streams']])}/select"
            form = {"action": rng.choice(["x-start", "", self.junk()])}
        elif r < 0.8:
            path = f"/control/commands/{rng.choice(['987654321', str(2**63), '1' * 30])}/{rng.choice(['execute', 'cancel'])}"
            form = {"reason": self.junk()}
        else:
            path = f"/control/schemes/{self.some_id(self.site['schemes'])}/change"
            form = {"change": "x-" + self.junk(), "reason": self.junk()}
        body = urllib.parse.urlencode(form).encode()
        headers = who.headers(with_csrf=rng.random() < 0.85, port=self.port)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        if rng.random() < 0.05:
            body = b"a=" + b"x" * 3_000_000  # over DATA_UPLOAD_MAX_MEMORY_SIZE
        method = "POST" if rng.random() < 0.9 else "GET"
        return Req(f"control post ({'anon' if who.name == 'anonymous' else 'user'})", method, path, headers, body)

    def acknowledge(self) -> Req:
        who = self.identities.get("fuzzer", self.identities["anonymous"])
        path = f"/events/{self.some_id(list(range(1, 30)))}/acknowledge/"
        body = urllib.parse.urlencode({"next": self.rng.choice(["/events/", "https://evil.example/", self.junk()])})
        headers = who.headers(with_csrf=True, port=self.port)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return Req("page acknowledge (user)", "POST", path, headers, body.encode())

    def admin_page(self) -> Req:
        rng = self.rng
        who = self.identities.get(
            rng.choice(["admin", "admin", "admin", "fuzzer", "anonymous"]), self.identities["anonymous"]
        )
        path = rng.choice(self.site["admin_urls"] + ["/admin/", "/admin/nope/", "/admin/grid/pmu/abc/change/"])
        r = rng.random()
        if r < 0.5:
            pairs = rng.choice(
                [
                    [("q", self.junk())],
                    [("o", rng.choice(["1", "-1.2", "99", "x", "1.1.1.1"]))],
                    [("p", rng.choice(["0", "2", "99999", "x", "-1"]))],
                    [("all", "")],
                    [("e", "1")],
                    [("_to_field", rng.choice(["password", "id", "x"]))],
                    [("_popup", "1"), ("_to_field", "id")],
                    [("pk__gt", self.junk())],
                    [("owner__password__startswith", "a")],
                    [("_changelist_filters", self.junk())],
                ]
            )
            path += ("&" if "?" in path else "?") + self.query(pairs)
        method = "GET" if rng.random() < 0.95 else rng.choice(["HEAD", "OPTIONS"])
        return Req(f"admin ({who.name if who.name != 'dso-operator' else 'user'})", method, path, who.headers())

    def raw(self) -> Req:
        rng = self.rng
        host = f"Host: 127.0.0.1:{self.port}\r\n"
        raw = rng.choice(
            [
                b"GET /api/v1/pmus?\xff\xfe HTTP/1.1\r\n" + host.encode() + b"\r\n",
                b"GET / HTTP/1.1\r\n" + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n",
                b"GARBAGE\r\n\r\n",
                b"GET /\x00 HTTP/1.1\r\n" + host.encode() + b"\r\n",
                b"POST /api/v1/subscriptions HTTP/1.1\r\n"
                + host.encode()
                + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
                b"GET / HTTP/9.9\r\n" + host.encode() + b"\r\n",
                b"GET / HTTP/1.1\r\n" + host.encode() + b"Content-Length: -1\r\n\r\n",
                (b"GET / HTTP/1.1\r\n" + host.encode() + b"X: 1\r\n" * 600 + b"\r\n"),
                rng.randbytes(rng.randrange(1, 2000)) + b"\r\n\r\n",
            ]
        )
        return Req("raw http", "RAW", "-", raw=raw, closed_is_fine=True)

    def next(self) -> Req:
        rng = self.rng
        table: list[tuple[float, Callable[[], Req]]] = [
            (4, self.api_pmus),
            (6, self.api_events),
            (16, self.api_data),
            (6, self.api_subscriptions),
            (4, self.api_subscription),
            (4, self.api_fault_records),
            (4, self.api_stream_enabled),
            (3, self.api_unknown),
            (28, self.page),
            (5, self.control_post),
            (2, self.acknowledge),
            (12, self.admin_page),
            (2, self.raw),
        ]
        pick = rng.uniform(0, sum(w for w, _ in table))
        for weight, make in table:
            pick -= weight
            if pick <= 0:
                return make()
        return self.page()


# the HTTP fuzzer --------------------------------------------------------------------------------


class Fuzzer:
    """Worker threads sending the catalogue's requests at a bounded rate; bad logins on their own pace."""

    def __init__(
        self, args: argparse.Namespace, site: EmbeddedSite, catalogue: Catalogue, tally: Tally, failures: FailureLog
    ) -> None:
        self.args = args
        self.site = site
        self.catalogue = catalogue
        self.tally = tally
        self.failures = failures
        self.pacer = Pacer(args.rate)
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.sent = 0
        self.last_bad_login = 0.0
        self.login_lock = threading.Lock()

    def start(self) -> None:
        for i in range(self.args.workers):
            thread = threading.Thread(target=self.work, args=(i,), name=f"fuzz{i}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def work(self, index: int) -> None:
        rng = random.Random(self.args.seed * 1000 + index)
        while self.pacer.wait(self.stop):
            with self.tally.lock:
                if self.sent >= self.args.max_requests:
                    return
                self.sent += 1
            if self.bad_login_due():
                self.bad_login(rng)
                continue
            with self.catalogue.lock:
                req = self.catalogue.next()
            self.run(req, rng)

    def bad_login_due(self) -> bool:
        with self.login_lock:
            now = time.monotonic()
            if now - self.last_bad_login < BAD_LOGIN_PERIOD_S:
                return False
            self.last_bad_login = now
            return True

    def run(self, req: Req, rng: random.Random) -> Answer | None:
        try:
            answer = send(self.site.port, req, self.args.request_timeout)
        except (OSError, http.client.HTTPException) as exc:
            if req.closed_is_fine:
                self.tally.add(req.group, "closed")
                return None
            if len(req.method) + len(req.path) + 10 > TWISTED_MAX_LINE:
                # Twisted (under Daphne) drops a connection whose request line is longer than its
                # LineReceiver.MAX_LENGTH without answering: a bound of the HTTP server, counted apart.
                self.tally.add(req.group, "closed: request line > 16 KiB")
                return None
            self.tally.add(req.group, "connection error")
            self.fail(req, None, f"{type(exc).__name__}: {exc}")
            return None
        status = str(answer.status)
        self.tally.add(req.group, status)
        if req.group == "api subscriptions" and answer.status == 201:
            self.track_subscription(req, answer)
        if answer.status in (429, 503):
            retry = answer.headers.get("retry-after")
            if retry is None and req.raw is None:
                self.tally.count(self.tally.retry_after, f"{answer.status} without Retry-After ({req.group})")
            if answer.status == 503 and retry is None:
                self.fail(req, answer, "503 without Retry-After")
            elif retry is not None:
                if rng.random() < 0.5:
                    self.tally.count(self.tally.retry_after, "honoured")
                    with contextlib.suppress(ValueError):
                        self.stop.wait(min(float(retry), 30.0))
                else:
                    self.tally.count(self.tally.retry_after, "ignored")
        elif answer.status >= 500:
            self.fail(req, answer, f"HTTP {answer.status}")
        return answer

    def fail(self, req: Req, answer: Answer | None, why: str) -> None:
        with self.tally.lock:
            self.tally.failures += 1
        record: dict[str, Any] = {"why": why, "request": req.describe()}
        if answer is not None:
            record["answer"] = {
                "status": answer.status,
                "headers": answer.headers,
                "body": answer.head.decode("latin-1"),
            }
            record["elapsed_s"] = round(answer.elapsed_s, 3)
        self.failures.write(record)

    def track_subscription(self, req: Req, answer: Answer) -> None:
        """Remember a created subscription; delete the oldest beyond MAX_LIVE_SUBSCRIPTIONS."""
        who = req.headers.get("X-Soak-Who", "tso")
        with contextlib.suppress(ValueError, KeyError):
            new_id = int(json.loads(answer.head)["id"])
            with self.catalogue.lock:
                own = self.catalogue.subscriptions[who]
                own.append(new_id)
                extra = own[:-MAX_LIVE_SUBSCRIPTIONS] if len(own) > MAX_LIVE_SUBSCRIPTIONS else []
                del own[: len(extra)]
            for old in extra:
                delete = Req("api subscription", "DELETE", f"/api/v1/subscriptions/{old}")
                delete.headers["Authorization"] = f"Bearer {self.catalogue.site['tokens'][who]}"
                self.run(delete, random.Random(old))

    def bad_login(self, rng: random.Random) -> None:
        """One failed login from a fresh anonymous session (wrong password, junk, no CSRF, huge fields)."""
        try:
            page = send(self.site.port, Req("login page", "GET", "/accounts/login/"), self.args.request_timeout)
        except OSError as exc:
            self.tally.add("login page", "connection error")
            self.fail(Req("login page", "GET", "/accounts/login/"), None, f"{type(exc).__name__}: {exc}")
            return
        self.tally.add("login page", str(page.status))
        cookie = page.headers.get("set-cookie", "")
        csrf = re.search(r"csrftoken=([^;]+)", cookie)
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.head)
        user = rng.choice(["viewer", "nobody", "admin' --", "x" * 200, "\u00e9l\u00e8ve", "n\x00ul", "operator2", ""])
        password = rng.choice(["wrong", "", "x" * 10_000, "\udcff".encode("utf-8", "surrogatepass").decode("latin-1")])
        form = {"username": user, "password": password}
        if rng.random() < 0.85 and token is not None:
            form["csrfmiddlewaretoken"] = token.group(1).decode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Referer": f"http://127.0.0.1:{self.site.port}/",
        }
        if csrf is not None:
            headers["Cookie"] = f"csrftoken={csrf.group(1)}"
        req = Req("bad login", "POST", "/accounts/login/", headers, urllib.parse.urlencode(form).encode())
        self.run(req, rng)

    def join(self) -> None:
        """Stop and wait for the workers (a request in flight may take up to the request timeout)."""
        self.stop.set()
        deadline = time.monotonic() + self.args.request_timeout + 5
        for thread in self.threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))


# the C37.118 abuser -----------------------------------------------------------------------------


def command(idcode: int, code: int, extended: bytes = b"") -> bytes:
    soc = int(time.time())
    return encode_frame(CommandFrame(idcode, soc, 0, code, extended))


def with_crc(body: bytes) -> bytes:
    """Return frame bytes (without CHK) completed by their CRC."""
    return body + struct.pack(">H", crc_ccitt(body))


class FrameAbuser:
    """Clients on the output server sending valid and malformed command frames (asyncio, one thread)."""

    def __init__(self, args: argparse.Namespace, port: int, tally: Tally, failures: FailureLog) -> None:
        self.args = args
        self.port = port
        self.tally = tally
        self.failures = failures
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def count(self, key: str, n: int = 1) -> None:
        self.tally.count(self.tally.frames, key, n)

    def start(self) -> None:
        self.thread = threading.Thread(target=lambda: asyncio.run(self.main()), name="c37-abuse", daemon=True)
        self.thread.start()

    def join(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=60)

    async def main(self) -> None:
        try:
            jobs = [self.client(i) for i in range(self.args.c37_clients)] + [self.crowds()]
            await asyncio.gather(*jobs)
        except BaseException as exc:  # noqa: BLE001 - reported in the summary
            self.error = exc

    async def sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; return False once the run is over."""
        await asyncio.sleep(seconds)
        return not self.stop.is_set()

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), 10)
        except (OSError, TimeoutError) as exc:
            self.count("connect errors")
            self.failures.write({"why": f"output server refused a connection: {exc!r}", "request": "c37 connect"})
            with self.tally.lock:
                self.tally.failures += 1
            return None

    async def answers(self, reader: asyncio.StreamReader, want: type, timeout_s: float) -> int:
        """Read until a frame of type `want` arrives or the timeout; return how many such frames came."""
        stream = StreamReader()
        deadline = time.monotonic() + timeout_s
        seen = 0
        while time.monotonic() < deadline:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            if not chunk:
                break
            for raw in stream.feed(chunk):
                if want is object:  # any whole frame (data frames need the configuration to decode)
                    seen += 1
                    continue
                with contextlib.suppress(Exception):
                    if isinstance(decode_frame(raw), want):
                        seen += 1
            if seen and want is not object:
                break
        return seen

    def mutated(self, rng: random.Random, kind: str) -> bytes:
        """Return one malformed frame of `kind`."""
        valid = command(OUTPUT_IDCODE, rng.choice([Command.SEND_CFG2, Command.START, Command.SEND_HEADER]))
        if kind == "bit flip":
            data = bytearray(valid)
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            return bytes(data)
        if kind == "truncated":
            return valid[: rng.randrange(1, len(valid))]
        if kind == "bad crc":
            return valid[:-2] + bytes([valid[-2] ^ 0xFF, valid[-1]])
        if kind == "huge framesize":
            return with_crc(b"\xaa\x41\xff\xff" + valid[4:16] + rng.randbytes(rng.randrange(0, 200)))[:4000]
        if kind == "random bytes":
            return rng.randbytes(rng.randrange(1, 4096))
        if kind == "wrong idcode":
            return command(rng.choice([0, 1, 9000, 65535]), Command.SEND_CFG2)
        if kind == "unknown command":
            return command(OUTPUT_IDCODE, rng.choice([0, 7, 0x0FFF, 0xFFFF]))
        if kind == "huge extended":
            return command(OUTPUT_IDCODE, Command.EXTENDED, rng.randbytes(rng.randrange(1000, 65000)))
        if kind == "other frame type":
            soc = int(time.time())
            return encode_frame(HeaderFrame(OUTPUT_IDCODE, soc, 0, "x" * rng.randrange(0, 1000)))
        raise ValueError(kind)

    async def client(self, index: int) -> None:
        rng = random.Random(self.args.seed * 7919 + index)
        kinds = [
            "bit flip", "truncated", "bad crc", "huge framesize", "random bytes", "wrong idcode",
            "unknown command", "huge extended", "other frame type",
        ]  # fmt: skip
        period_s = 1.0 / self.args.c37_rate
        while not self.stop.is_set():
            action = rng.random()
            if action < 0.25:
                await self.valid_session(rng)
            elif action < 0.35:
                await self.slow_loris(rng)
            elif action < 0.42:
                await self.cfg_flood(rng)
            else:
                await self.malformed_session(rng, rng.choice(kinds))
            if not await self.sleep(period_s * rng.uniform(0.5, 1.5)):
                return

    async def valid_session(self, rng: random.Random) -> None:
        """Ask for the header and configurations, stream a second or two, stop; check the answers came."""
        opened = await self.open()
        if opened is None:
            return
        reader, writer = opened
        self.count("connections")
        try:
            for code, want in (
                (Command.SEND_HEADER, HeaderFrame),
                (Command.SEND_CFG2, ConfigFrame),
                (Command.SEND_CFG1, ConfigFrame),
            ):
                writer.write(command(OUTPUT_IDCODE, code))
                await writer.drain()
                self.count("valid commands")
                got = await self.answers(reader, want, 5.0)
                self.count("answered" if got else "unanswered valid commands")
            writer.write(command(OUTPUT_IDCODE, Command.START))
            self.count("valid commands")
            await writer.drain()
            data = await self.answers(reader, object, rng.uniform(0.5, 2.0))
            self.count("abuser data frames", data)
            writer.write(command(OUTPUT_IDCODE, Command.STOP))
            self.count("valid commands")
            await writer.drain()
        except (OSError, TimeoutError):
            self.count("connection dropped by server")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)

    async def malformed_session(self, rng: random.Random, kind: str) -> None:
        """Send 1-20 malformed frames of one kind, then a valid SEND_CFG2: does the server still answer?"""
        opened = await self.open()
        if opened is None:
            return
        reader, writer = opened
        self.count("connections")
        try:
            for _ in range(rng.randrange(1, 21)):
                writer.write(self.mutated(rng, kind))
                self.count("malformed frames")
                self.count(f"malformed: {kind}")
            writer.write(command(OUTPUT_IDCODE, Command.SEND_CFG2))
            await writer.drain()
            got = await self.answers(reader, ConfigFrame, 3.0)
            self.count(f"answered after {kind}" if got else f"not answered after {kind}")
        except (OSError, TimeoutError):
            self.count("connection dropped by server")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)

    async def slow_loris(self, rng: random.Random) -> None:
        """Dribble a frame a byte at a time (or leave a partial frame hanging) for up to 20 s."""
        opened = await self.open()
        if opened is None:
            return
        reader, writer = opened
        self.count("connections")
        self.count("slow-loris connections")
        try:
            frame = command(OUTPUT_IDCODE, Command.SEND_CFG2)
            if rng.random() < 0.5:
                frame = frame[: rng.randrange(4, len(frame))]  # never completed
                self.count("malformed frames")
                self.count("malformed: partial frame held")
            for byte in frame:
                writer.write(bytes([byte]))
                await writer.drain()
                if not await self.sleep(rng.uniform(0.3, 1.2)):
                    break
            await self.answers(reader, ConfigFrame, 2.0)
        except (OSError, TimeoutError):
            self.count("connection dropped by server")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)

    async def cfg_flood(self, rng: random.Random) -> None:
        """Ask for CFG-2 and CFG-3 many times without reading the answers, then hang up."""
        opened = await self.open()
        if opened is None:
            return
        _reader, writer = opened
        self.count("connections")
        try:
            for _ in range(rng.randrange(50, 300)):
                writer.write(command(OUTPUT_IDCODE, rng.choice([Command.SEND_CFG2, Command.SEND_CFG3])))
                self.count("valid commands")
                self.count("flood commands")
            await writer.drain()
            await self.sleep(rng.uniform(1, 5))
        except (OSError, TimeoutError):
            self.count("connection dropped by server")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)

    async def crowds(self) -> None:
        """Every 30-60 s open up to --max-connections at once (half START and never read), hold 10 s, close."""
        rng = random.Random(self.args.seed * 31)
        while await self.sleep(rng.uniform(30, 60)):
            n = rng.randrange(self.args.max_connections // 2, self.args.max_connections + 1)
            opened = await asyncio.gather(*(self.open() for _ in range(n)))
            writers = [pair[1] for pair in opened if pair is not None]
            self.count("crowd connections", len(writers))
            self.count("connections", len(writers))
            for i, writer in enumerate(writers):
                with contextlib.suppress(OSError):
                    if i % 2 == 0:
                        writer.write(command(OUTPUT_IDCODE, Command.START))
                        self.count("valid commands")
                    else:
                        writer.write(command(OUTPUT_IDCODE, Command.SEND_CFG2)[:9])
                        self.count("malformed frames")
                        self.count("malformed: partial frame held")
            await self.sleep(10)
            for writer in writers:
                writer.close()
            self.count("crowds")


# the normal users -------------------------------------------------------------------------------


class Operator:
    """An operator loading the overview and an application reading the API's latest values every few seconds."""

    def __init__(
        self,
        args: argparse.Namespace,
        site: EmbeddedSite,
        identity: Identity,
        token: str,
        pmus: list[int],
        tally: Tally,
        failures: FailureLog,
    ) -> None:
        self.args = args
        self.site = site
        self.identity = identity
        self.token = token
        self.pmus = pmus
        self.tally = tally
        self.failures = failures
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, name="operator", daemon=True)

    def loop(self) -> None:
        while not self.stop.wait(self.args.operator_period):
            self.check("overview", Req("operator overview", "GET", "/", self.identity.headers()))
            query = urllib.parse.urlencode([("pmu", ",".join(map(str, self.pmus))), ("quantity", "frequency_hz")])
            req = Req("operator latest", "GET", f"/api/v1/data?{query}", {"Authorization": f"Bearer {self.token}"})
            self.check("latest", req)

    def check(self, name: str, req: Req) -> None:
        try:
            answer = send(self.site.port, req, self.args.request_timeout, keep=READ_LIMIT)
        except (OSError, http.client.HTTPException) as exc:
            self.problem(name, req, None, f"{type(exc).__name__}: {exc}")
            return
        with self.tally.lock:
            self.tally.operator_ms[name].append(answer.elapsed_s * 1000)
        if answer.status != 200:
            self.problem(name, req, answer, f"HTTP {answer.status}")
            return
        if name == "latest":
            self.check_fresh(req, answer)
        self.tally.count(self.tally.operator, f"{name} ok")

    def check_fresh(self, req: Req, answer: Answer) -> None:
        """Count answers whose newest value is older than 10 s (the live path stalled)."""
        with contextlib.suppress(ValueError, KeyError, TypeError):
            latest = json.loads(answer.head)["latest"]
            stamps = [row["t"] for row in latest if row.get("t") is not None]
            age_s = time.time() - max(stamps) if stamps else math.inf
            if age_s > 10:
                self.tally.count(self.tally.operator, "latest stale (>10 s)")

    def problem(self, name: str, req: Req, answer: Answer | None, why: str) -> None:
        self.tally.count(self.tally.operator, f"{name} failed")
        with self.tally.lock:
            self.tally.failures += 1
        record: dict[str, Any] = {"why": f"normal operator {name}: {why}", "request": req.describe()}
        if answer is not None:
            record["answer"] = {"status": answer.status, "body": answer.head[:2000].decode("latin-1")}
        self.failures.write(record)


class WebhookSink:
    """A loopback HTTP server that takes the subscriptions' deliveries and counts them."""

    def __init__(self) -> None:
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(min(length, 1 << 20))
                sink.deliveries += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.deliveries = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook-sink", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# monitoring -------------------------------------------------------------------------------------


def simulator_pid(site: EmbeddedSite) -> int | None:
    """Return the pid of the simulator run_embedded started (a child in its own session)."""
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(site.process.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "simulate_grid" in " ".join(child.cmdline()):
                    return int(child.pid)
    return None


def read_json(port: int, path: str, headers: dict[str, str], timeout_s: float = 30) -> Any:
    """GET a JSON document whole."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request("GET", path, headers=headers)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def link_counts(site: EmbeddedSite, admin: Identity, timeout_s: float) -> dict[str, int]:
    """Return the pdc's link states from the staff /healthz details ({"streaming": n, ...})."""
    try:
        body = read_json(site.port, "/healthz", admin.headers(), timeout_s)
    except (OSError, ValueError, http.client.HTTPException):
        return {"unreadable": 1}
    return dict(body.get("pdc_links", {}).get("counts", {}))


@dataclass
class Sample:
    t_s: float
    rss_mib: dict[str, float]
    hwm_mib: dict[str, float]
    links: dict[str, int]
    load: float
    requests: int
    frames_out: int


class Monitor:
    """Sample memory, link states and counts every MONITOR_PERIOD_S into timeline.jsonl; print progress."""

    def __init__(
        self, site: EmbeddedSite, admin: Identity, tally: Tally, watch: Any, path: Path, timeout_s: float
    ) -> None:
        self.site = site
        self.admin = admin
        self.tally = tally
        self.watch = watch
        self.path = path
        self.timeout_s = timeout_s
        self.samples: list[Sample] = []
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.sim_pid = simulator_pid(site)
        self.thread = threading.Thread(target=self.loop, name="monitor", daemon=True)

    def sample(self) -> Sample:
        rss: dict[str, float] = {}
        hwm: dict[str, float] = {}
        for name, pid in (("embedded", self.site.process.pid), ("simulator", self.sim_pid)):
            if pid is None:
                continue
            with contextlib.suppress(OSError):
                memory = process_memory_kib(pid)
                rss[name], hwm[name] = memory["VmRSS"] / 1024, memory["VmHWM"] / 1024
        with self.tally.lock:
            requests = sum(self.tally.by_status.values())
        sample = Sample(
            time.monotonic() - self.started,
            rss,
            hwm,
            link_counts(self.site, self.admin, self.timeout_s),
            os.getloadavg()[0],
            requests,
            len(self.watch.arrivals),
        )
        self.samples.append(sample)
        with self.path.open("a") as out:
            out.write(json.dumps(sample.__dict__) + "\n")
        return sample

    def loop(self) -> None:
        while not self.stop.wait(MONITOR_PERIOD_S):
            s = self.sample()
            with self.tally.lock:
                fails, malformed = self.tally.failures, self.tally.frames["malformed frames"]
            rss = ", ".join(f"{k} {v:.0f}" for k, v in s.rss_mib.items())
            print(
                f"[{s.t_s:6.0f} s] RSS MiB {rss}; links {s.links}; requests {s.requests}; malformed frames "
                f"{malformed}; output frames {s.frames_out}; failures {fails}; load {s.load:.1f}",
                flush=True,
            )
            if self.site.process.poll() is not None:
                print("the embedded process exited", flush=True)
                return


# run --------------------------------------------------------------------------------------------


def wait_links(site: EmbeddedSite, admin: Identity, timeout_s: float) -> dict[str, int]:
    """Wait until every link streams (or the timeout); return the counts."""
    deadline = time.monotonic() + timeout_s
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = link_counts(site, admin, 30)
        total = sum(counts.values())
        if total and counts.get("streaming", 0) == total:
            return counts
        time.sleep(2)
    return counts


def longest_gap(arrivals: list[float], start: float, end: float) -> tuple[float, float]:
    """Return the longest time without a frame in [start, end] and when it began (s from start)."""
    times = [start, *[t for t in arrivals if start <= t <= end], end]
    worst, at = 0.0, 0.0
    for a, b in itertools.pairwise(times):
        if b - a > worst:
            worst, at = b - a, a - start
    return worst, at


def log_problems(log: Path) -> dict[str, Any]:
    """Count tracebacks and ERROR lines of the embedded log; return the distinct tracebacks' last lines."""
    text = log.read_text(errors="replace") if log.exists() else ""
    lines = text.splitlines()
    errors = [line for line in lines if re.search(r"\b(ERROR|CRITICAL)\b", line)]
    tracebacks: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for match in re.finditer(r"Traceback \(most recent call last\):\n(?:[ \t].*\n|\n)*?(\S[^\n]*)", text):
        tracebacks[match.group(1)[:200]] += 1
        examples.setdefault(match.group(1)[:200], text[max(0, match.start() - 400) : match.end()][-3000:])
    internal = [line for line in lines if "Internal Server Error" in line]
    return {
        "internal_server_errors": len(internal),
        "first_internal_server_errors": internal[:10],
        "error_lines": len(errors),
        "warning_lines": sum(1 for line in lines if " WARNING " in line),
        "tracebacks": dict(tracebacks),
        "first_errors": errors[:10],
        "traceback_examples": examples,
    }


def stop_group(pid: int | None, name: str) -> None:
    """SIGTERM a process group, SIGKILL it after 10 s (a simulator left behind by a killed parent)."""
    if pid is None or not psutil.pid_exists(pid):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        pgid = os.getpgid(pid)
        os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).wait(timeout=10)
        if psutil.pid_exists(pid):
            print(f"{name} ignored SIGTERM: SIGKILL", flush=True)
            os.killpg(pgid, signal.SIGKILL)


@contextlib.contextmanager
def terminated_on_signal() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into SystemExit so that cleanup runs."""

    def handler(signum: int, _frame: Any) -> None:
        raise SystemExit(f"stopped by signal {signum}")

    saved = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, old in saved.items():
            signal.signal(s, old)


def soak(args: argparse.Namespace) -> dict[str, Any]:
    """Run the whole soak and return its result."""
    var_dir = Path(args.var_dir or ROOT / "var" / "soak-abuse" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    var_dir.mkdir(parents=True, exist_ok=True)
    print(f"var directory {var_dir}", flush=True)
    sink = WebhookSink()
    sink.start()
    port, output_port = free_port(), free_port()
    limits = {"WAMS_API_RATE": args.api_rate, "WAMS_PAGE_RATE": args.page_rate}
    env = prepare_site(var_dir, port, {"WAMS_WEBHOOK_ALLOW": "127.0.0.1", **limits})
    seeded = manage(
        env, "shell", "-c", f"from tests.wams.embedded_seed import seed; seed({output_port}, {args.seed_values})"
    )
    window = json.loads(seeded.strip().splitlines()[-1])
    found = json.loads(
        manage(env, "shell", "-c", "from bench.soak_abuse import setup_site; setup_site()").strip().splitlines()[-1]
    )
    print(
        f"seeded {window['values']:,} values; {len(found['pmus'])} PMUs, {len(found['admin_urls'])} admin URLs",
        flush=True,
    )
    tally = Tally()
    failures = FailureLog(var_dir / "failures.jsonl")
    catalogue = Catalogue(random.Random(args.seed), port, found, window)
    catalogue.webhook = f"http://127.0.0.1:{sink.port}/hook"
    result: dict[str, Any] = {"var_dir": str(var_dir), "seeded_values": window["values"]}
    sim_pid: int | None = None
    with terminated_on_signal(), running(env, var_dir) as site:
        try:
            sim_pid = simulator_pid(site)
            identities = {name: site.login(name) for name in ("operator", "fuzzer", "dso-operator", "admin")}
            for name, opener in identities.items():
                catalogue.identities[name] = Identity(name, *cookie_header(jar_of(opener)))
            admin = catalogue.identities["admin"]
            watch = watch_output(output_port, OUTPUT_IDCODE)
            watch.wait_for_frames(3 * OUTPUT_FPS, timeout_s=180)
            links_start = wait_links(site, admin, 120)
            print(f"ready: links {links_start}; output streaming", flush=True)
            visible = read_json(port, "/api/v1/pmus", {"Authorization": f"Bearer {found['tokens']['normal']}"})
            operator_pmus = [p["id"] for p in visible["pmus"]][:50]
            monitor = Monitor(site, admin, tally, watch, var_dir / "timeline.jsonl", args.request_timeout)
            monitor.sample()
            fuzzer = Fuzzer(args, site, catalogue, tally, failures)
            abuser = FrameAbuser(args, output_port, tally, failures)
            operator = Operator(
                args, site, catalogue.identities["operator"], found["tokens"]["normal"], operator_pmus, tally, failures
            )
            wall_start, start = time.time(), time.monotonic()
            for part in (monitor, operator):
                part.thread.start()
            fuzzer.start()
            abuser.start()
            end = start + args.minutes * 60
            while time.monotonic() < end and site.process.poll() is None:
                time.sleep(1)
            end = min(end, time.monotonic())
            wall_end = wall_start + (end - start)
            fuzzer.join()
            abuser.join()
            operator.stop.set()
            operator.thread.join(timeout=args.request_timeout + 5)
            time.sleep(2)
            alive = site.process.poll() is None
            links_end = wait_links(site, admin, 5) if alive else {}
            monitor.stop.set()
            monitor.thread.join(timeout=args.request_timeout + 5)
            if alive:
                monitor.sample()
            watch.stop()
            result.update(
                summarise(
                    args, tally, failures, monitor, watch, start, end, wall_start, wall_end, links_start, links_end
                )
            )
            result["alive_at_end"] = alive
            result["abuser_error"] = repr(abuser.error) if abuser.error else None
            result["output_client_error"] = repr(watch.error) if watch.error else None
            result["webhook_deliveries"] = sink.deliveries
        finally:
            sim_pid = sim_pid or simulator_pid(site)
    stop_group(sim_pid, "simulator")
    sink.stop()
    result["log"] = log_problems(var_dir / "embedded.log")
    (var_dir / "result.json").write_text(json.dumps(result, indent=1, default=repr))
    return result


def rss_slope_mib_per_h(samples: list[Sample], name: str) -> float:
    """Return the least-squares slope of RSS over the second half of the run, MiB per hour."""
    points = [(s.t_s, s.rss_mib[name]) for s in samples if name in s.rss_mib]
    points = points[len(points) // 2 :]
    if len(points) < 3:
        return math.nan
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / var * 3600 if var else math.nan


def summarise(
    args: argparse.Namespace,
    tally: Tally,
    failures: FailureLog,
    monitor: Monitor,
    watch: Any,
    start: float,
    end: float,
    wall_start: float,
    wall_end: float,
    links_start: dict[str, int],
    links_end: dict[str, int],
) -> dict[str, Any]:
    duration_s = end - start
    gap_s, gap_at = longest_gap(list(watch.arrivals), start, end)
    frames = len([t for t in watch.arrivals if start <= t <= end])
    stamps = len(set(watch.stamps_between(wall_start, wall_end)))
    memory: dict[str, dict[str, float]] = {}
    for name in ("embedded", "simulator"):
        rss = [s.rss_mib[name] for s in monitor.samples if name in s.rss_mib]
        hwm = [s.hwm_mib[name] for s in monitor.samples if name in s.hwm_mib]
        if rss:
            peak = max(max(rss), max(hwm, default=0.0))
            memory[name] = {
                "start_mib": rss[0],
                "peak_mib": peak,
                "final_mib": rss[-1],
                "bound_mib": math.ceil(peak / RSS_BOUND_STEP_MIB) * RSS_BOUND_STEP_MIB,
                "slope_second_half_mib_per_h": rss_slope_mib_per_h(monitor.samples, name),
            }
    with tally.lock:
        five = sum(n for status, n in tally.by_status.items() if status.startswith("5"))
        return {
            "minutes": args.minutes,
            "duration_s": duration_s,
            "rate_per_s": args.rate,
            "workers": args.workers,
            "requests": sum(tally.by_status.values()),
            "by_status": dict(sorted(tally.by_status.items())),
            "by_group": {g: dict(sorted(c.items())) for g, c in sorted(tally.by_group.items())},
            "http_5xx": five,
            "connection_errors": tally.by_status.get("connection error", 0),
            "failures": tally.failures,
            "first_failures": failures.first,
            "retry_after": dict(tally.retry_after),
            "frames": dict(sorted(tally.frames.items())),
            "output": {
                "frames_received": frames,
                "frames_expected": round(OUTPUT_FPS * duration_s),
                "instants_stamped_in_run": stamps,
                "longest_gap_s": gap_s,
                "longest_gap_at_s": gap_at,
            },
            "operator": dict(tally.operator),
            "operator_ms": {
                k: {"p50": sorted(v)[len(v) // 2], "max": max(v), "n": len(v)}
                for k, v in tally.operator_ms.items()
                if v
            },
            "links_start": links_start,
            "links_end": links_end,
            "memory": memory,
            "load_avg": [round(s.load, 2) for s in monitor.samples],
        }


# report -----------------------------------------------------------------------------------------


def verdict(result: dict[str, Any]) -> list[str]:
    """Return what failed (empty: the soak passed)."""
    problems = []
    if result.get("http_5xx"):
        problems.append(f"{result['http_5xx']} answers 5xx")
    if result.get("connection_errors"):
        problems.append(f"{result['connection_errors']} connection errors")
    if result.get("failures"):
        problems.append(f"{result['failures']} failures in all (failures.jsonl)")
    if not result.get("alive_at_end", False):
        problems.append("the embedded process was not running at the end")
    output = result.get("output", {})
    if output.get("longest_gap_s", math.inf) > 2.0:
        problems.append(f"the output stream stalled {output.get('longest_gap_s', math.nan):.1f} s")
    return problems


def table(rows: list[list[str]], head: list[str]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def markdown(args: argparse.Namespace, result: dict[str, Any], command_line: str) -> str:
    """Return the BENCHMARKS.md section of one run."""
    out = result["output"]
    loads = result["load_avg"]
    mem_rows = [
        [
            name,
            f"{m['start_mib']:.0f}",
            f"{m['peak_mib']:.0f}",
            f"{m['final_mib']:.0f}",
            f"{m['slope_second_half_mib_per_h']:+.0f}",
            f"RSS stays below {m['bound_mib']} MiB",
        ]
        for name, m in result["memory"].items()
    ]
    statuses = ", ".join(f"{k}: {v}" for k, v in result["by_status"].items())
    frames = result["frames"]
    malformed = {k.removeprefix("malformed: "): v for k, v in frames.items() if k.startswith("malformed: ")}
    answered = {k: v for k, v in frames.items() if k.startswith(("answered after", "not answered after"))}
    group_rows = [
        [group, ", ".join(f"{s}: {n}" for s, n in counts.items())] for group, counts in result["by_group"].items()
    ]
    problems = verdict(result)
    log = result["log"]
    lines = [
        f"### Soak under abuse, {result['minutes']:g} min (`bench/soak_abuse.py`, {datetime.now(UTC):%d %b %Y %H:%M} UTC)",
        "",
        f"Command: `{command_line}`. Machine: {os.cpu_count()} CPUs, load average {min(loads):.1f}-{max(loads):.1f} "
        f"during the run (shared with other work). Embedded system as `make demo` runs it (SQLite, simulator, "
        f"{result['seeded_values']:,} stored values, WAMS_API_RATE={args.api_rate}, WAMS_PAGE_RATE={args.page_rate}), "
        f"{result['duration_s'] / 60:.1f} min of abuse.",
        "",
        f"- Verdict: {'PASS' if not problems else 'FAIL: ' + '; '.join(problems)}.",
        f"- HTTP fuzzer: {result['requests']:,} requests at <= {args.rate:g}/s from {args.workers} workers; by status: {statuses}. "
        f"5xx: {result['http_5xx']}; connection errors: {result['connection_errors']}. Retry-After: "
        + ", ".join(f"{k} {v}" for k, v in result["retry_after"].items()),
        f"- C37.118 abuser ({args.c37_clients} clients, crowds up to {args.max_connections} connections): "
        f"{frames.get('malformed frames', 0):,} malformed frames sent ("
        + ", ".join(f"{k} {v}" for k, v in malformed.items())
        + f"), {frames.get('valid commands', 0):,} valid commands, {frames.get('connections', 0):,} connections, "
        f"connect errors {frames.get('connect errors', 0)}; valid commands unanswered {frames.get('unanswered valid commands', 0)}; "
        "SEND_CFG2 after malformed frames: " + ", ".join(f"{k} {v}" for k, v in answered.items()) + ".",
        f"- Output stream (a downstream PDC reading all along): {out['frames_received']:,} frames received of "
        f"{out['frames_expected']:,} expected at {OUTPUT_FPS} fps ({out['instants_stamped_in_run']:,} distinct instants "
        f"stamped in the run); longest gap {out['longest_gap_s']:.2f} s ({out['longest_gap_at_s']:.0f} s in).",
        f"- Normal operator every {args.operator_period:g} s: "
        + ", ".join(f"{k} {v}" for k, v in sorted(result["operator"].items()))
        + "; latency "
        + ", ".join(f"{k} p50 {v['p50']:.0f} ms, max {v['max']:.0f} ms" for k, v in result["operator_ms"].items())
        + ".",
        f"- Links: {result['links_start']} at the start, {result['links_end']} at the end.",
        f"- Embedded log: {log['internal_server_errors']} 'Internal Server Error' lines, {log['error_lines']} ERROR lines, {log['warning_lines']} WARNING lines, tracebacks: "
        + (
            f"{len(log['tracebacks'])} kinds, most frequent: "
            + "; ".join(f"{k[:100]} x{v}" for k, v in Counter(log["tracebacks"]).most_common(6))
            if log["tracebacks"]
            else "none"
        )
        + " (Django logs handled 4xx refusals such as PermissionDenied with their traceback too).",
        "",
        table(mem_rows, ["process", "RSS at start MiB", "peak MiB", "final MiB", "slope, 2nd half MiB/h", "bound"]),
        "",
        "<details><summary>Answers by request group</summary>",
        "",
        table(group_rows, ["group", "answers"]),
        "",
        "</details>",
        "",
    ]
    return "\n".join(lines)


def print_summary(result: dict[str, Any]) -> None:
    print(
        json.dumps(
            {k: v for k, v in result.items() if k not in ("by_group", "first_failures", "log", "load_avg")},
            default=repr,
        )
    )
    for record in result.get("first_failures", [])[:10]:
        print("FAILURE", json.dumps(record, default=repr)[:3000])
    for last, example in result["log"]["traceback_examples"].items():
        print(f"--- traceback in the embedded log ({result['log']['tracebacks'][last]}x): {last}\n{example}")
    problems = verdict(result)
    print("PASS" if not problems else "FAIL: " + "; ".join(problems))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the abuse runs (default 30)")
    parser.add_argument("--rate", type=float, default=8.0, help="HTTP fuzzer requests per second, all workers (8)")
    parser.add_argument("--workers", type=int, default=4, help="HTTP fuzzer threads (requests in flight at most)")
    parser.add_argument("--max-requests", type=int, default=100_000, help="HTTP fuzzer requests at most")
    parser.add_argument("--request-timeout", type=float, default=60.0, help="seconds before a request counts as failed")
    parser.add_argument("--c37-clients", type=int, default=4, help="C37.118 abusing clients")
    parser.add_argument("--c37-rate", type=float, default=2.0, help="abusive sessions per second per client")
    parser.add_argument("--max-connections", type=int, default=64, help="largest crowd of output connections")
    parser.add_argument(
        "--operator-period", type=float, default=5.0, help="seconds between the normal operator's loads"
    )
    parser.add_argument(
        "--api-rate", default="120/m", help="WAMS_API_RATE of the site, per token (120/m: the fuzzer meets it)"
    )
    parser.add_argument("--page-rate", default="120/m", help="WAMS_PAGE_RATE of the site, per user (120/m)")
    parser.add_argument("--seed-values", type=int, default=SEED_VALUES, help="stored history to seed (values)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the fuzzers")
    parser.add_argument("--var-dir", default=None, help="var directory of the run (default var/soak-abuse/<UTC time>)")
    parser.add_argument("--write", action="store_true", help="append a section to BENCHMARKS.md")
    args = parser.parse_args()
    if os.environ.get("REDIS_URL") or os.environ.get("DATABASE_URL"):
        print("note: REDIS_URL / DATABASE_URL are ignored: the soak runs the embedded default", flush=True)
    command_line = " ".join(["python", "bench/soak_abuse.py", *sys.argv[1:]])
    result = soak(args)
    print_summary(result)
    if args.write:
        with (ROOT / "BENCHMARKS.md").open("a") as out:
            out.write("\n" + markdown(args, result, command_line))
        print("appended to BENCHMARKS.md")
    sys.exit(1 if verdict(result) else 0)


if __name__ == "__main__":
    main()
