"""A throwaway TLS certificate for the lab's instances that demand STARTTLS.

Made at run time with ``openssl`` (self-signed, 2048-bit RSA, one day), so no key is ever
committed; the lab's relay instances never use TLS, so nobody verifies it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def throwaway_cert(folder: Path, hostname: str) -> tuple[Path, Path]:
    """Write ``folder/tls-cert.pem`` and ``folder/tls-key.pem`` for ``hostname``."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "tls-cert.pem", folder / "tls-key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={hostname}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    key.chmod(0o600)
    return cert, key
