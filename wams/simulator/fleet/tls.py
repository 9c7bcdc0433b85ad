"""TLS for simulated devices: a self-signed certificate made on first use."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path


def ensure_self_signed(directory: Path, common_name: str = "wams-simulator") -> tuple[Path, Path]:
    """Return (certificate, key) PEM files in `directory`, creating them with openssl if missing."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "simulator.crt", directory / "simulator.key"
    if not (cert.exists() and key.exists()):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj",
             f"/CN={common_name}", "-addext", f"subjectAltName=DNS:{common_name},DNS:localhost,IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
        )  # fmt: skip
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """Return a TLS server context for the simulated devices."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def client_context(cert: Path) -> ssl.SSLContext:
    """Return a TLS client context trusting the simulator's certificate."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
    return context
