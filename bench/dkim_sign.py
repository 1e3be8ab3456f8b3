"""CPU cost of one DKIM signature: our OpenSSL-backed signer vs dkimpy's pure-Python RSA.

Run: ``.venv/bin/python bench/dkim_sign.py [iterations]``. Prints milliseconds of process CPU
time per signature for a ~10 KB message.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from cryptography.hazmat.primitives import serialization

from gateway.mail.dkim import ED25519_SHA256, RSA_SHA256, keygen, sign

MESSAGE = (
    b"From: Billing <billing@example.com>\r\n"
    b"To: customer@example.net\r\n"
    b"Subject: Your invoice 2024-0042\r\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
    b"Message-ID: <invoice-2024-0042@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"List-Unsubscribe: <https://example.com/u/abc>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    b"\r\n" + b"Dear customer, please find your invoice attached.  \r\n" * 200
)


def _dkimpy() -> ModuleType:
    """Import dkimpy's ``dkim``: this script's own name would shadow it on ``sys.path``."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.modules.pop("dkim", None)
    return importlib.import_module("dkim")


def cpu_ms(fn: Callable[[], object], iterations: int) -> float:
    fn()  # warm caches (key loading)
    start = time.process_time()
    for _ in range(iterations):
        fn()
    return (time.process_time() - start) * 1000 / iterations


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    dkim = _dkimpy()
    rsa_key, _ = keygen("example.com", "bench", RSA_SHA256, 2048)
    ed_key, _ = keygen("example.com", "bench", ED25519_SHA256)
    # dkimpy wants the traditional (PKCS#1) PEM.
    loaded = serialization.load_pem_private_key(rsa_key.private_key_pem, password=None)
    pkcs1 = loaded.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    ours_rsa = cpu_ms(lambda: sign(MESSAGE, rsa_key), n)
    ours_ed = cpu_ms(lambda: sign(MESSAGE, ed_key), n)
    theirs = cpu_ms(
        lambda: dkim.sign(
            MESSAGE,
            b"bench",
            b"example.com",
            pkcs1,
            canonicalize=(b"relaxed", b"relaxed"),
        ),
        max(n // 10, 5),
    )
    print(f"gateway.mail.dkim rsa-sha256 2048   {ours_rsa:8.3f} ms CPU/signature")
    print(f"gateway.mail.dkim ed25519-sha256    {ours_ed:8.3f} ms CPU/signature")
    print(f"dkimpy dkim.sign rsa-sha256    {theirs:8.3f} ms CPU/signature")
    print(f"speed-up (RSA)                 {theirs / ours_rsa:8.1f}x")


if __name__ == "__main__":
    main()
