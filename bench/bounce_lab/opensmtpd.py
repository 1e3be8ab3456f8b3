"""Two private OpenSMTPD instances (x relays, y is the destination) from the extracted package.

smtpd(8) must start as root and has its paths compiled in (the queue in /var/spool/smtpd, the
chroot /var/lib/opensmtpd/empty, the control socket in /var/run): the lab runs it inside its
private mount namespace where /var/spool, /var/lib and /run are private tmpfs, so two
instances cannot share a namespace: each gets its own (``unshare -m``) with its own tmpfs.

The unknown user is refused by the most common set-up, system users (with a ``virtual``
table, 6.8 answers an unknown user with 524 5.2.4 "Mailing list expansion problem").
Four scenarios are not made with OpenSMTPD (``SKIPPED`` says why): it resolves a recipient
when it is given (RCPT), so it cannot accept an unknown user and fail later
(``unknown_late``); its delivery methods have no quota (``over_quota``): both would need an
external delivery agent whose words would be ours, not the MTA's; and 6.8 has no built-in
DNS block-list check (``rbl_listed``) nor a check of the sender's domain (``sender_domain``).
Its ``tls-require`` listener refuses in its own words; its built-in filters match a client
without reverse DNS (``no_ptr``) or a recipient (``greylisted``) but reply with a configured
text (``HOW`` says which).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.bounce_lab.scenarios import (
    BOUNCE_DOMAIN,
    DEAD_HOST,
    DEAD_PORT,
    HOSTS,
    SCENARIOS,
    SIZE_LIMIT,
    Y_PORT,
    Y_TLS_PORT,
)
from bench.bounce_lab.tls import throwaway_cert

MTA = "opensmtpd"
SKIPPED = {
    "unknown_late": "OpenSMTPD resolves a recipient at RCPT: it cannot accept an unknown user",
    "over_quota": "OpenSMTPD's delivery methods have no quota",
    "rbl_listed": "OpenSMTPD 6.8 has no built-in DNS block-list check (it takes a separate "
    "filter, filter-dnsbl, whose words would not be the MTA's)",
    "sender_domain": "OpenSMTPD 6.8 has no built-in check of the sender's domain in DNS",
}
#: OpenSMTPD's filter defers with a configured text (it has no greylisting of its own).
GREYLIST_TEXT = "451 4.7.1 Greylisted, please try again later"
#: y's port whose built-in filter refuses a client without reverse DNS (no_ptr).
Y_NOPTR_PORT = 2529
#: OpenSMTPD's filters match the check themselves but reply with a configured text: this one
#: is the example of smtpd.conf(5).
NOPTR_TEXT = "550 no rDNS is so 80s"
HOW = {
    "greylisted": "y's built-in filter 'phase rcpt-to match rcpt-to <domain> reject' answers "
    f"every RCPT for the domain with a configured 4xx text ('{GREYLIST_TEXT}'; OpenSMTPD has "
    "no greylisting of its own) until x's queue lifetime ends; x writes the report, which "
    "keeps none of y's words (OpenSMTPD's expiry report says only 'Envelope expired')",
    "no_ptr": f"the lab DNS has no PTR for x's loopback address; y (port {Y_NOPTR_PORT}) "
    "refuses it at MAIL with the built-in filter 'match !rdns reject', whose text is "
    f"configured ('{NOPTR_TEXT}', smtpd.conf(5)'s example, where it disconnects at connect: "
    "OpenSMTPD's relay takes a refused greeting for a network error and keeps no words, and "
    "marks the host down for the other scenarios); x writes the report",
}
#: Made and kept, but its words cannot tell it from another scenario (see labels.jsonl).
AMBIGUOUS = {
    "relay_denied": "OpenSMTPD refuses a domain it does not serve with the words it gives an "
    "unknown user, 550 Invalid recipient: no reader of the report can tell them apart",
}


def _domain(name: str) -> str:
    return next(s for s in SCENARIOS if s.name == name).domain(MTA)


def write(work: Path, root: Path, mx_port: int, proxy_port: int) -> list[Path]:
    x_host, y_host = HOSTS[MTA]
    common = f"""\
queue ttl 20s
bounce warn-interval 1h
action "gw" relay host smtp://127.0.0.1:{proxy_port} src {{HOST}}
match from any for domain "{BOUNCE_DOMAIN}" action "gw"
"""
    to_y = [
        s.domain(MTA)
        for s in SCENARIOS
        if s.name
        not in ("conn_refused", "nxdomain", "dns_servfail", "tls_required", "no_ptr", *SKIPPED)
    ]
    x = (
        common.replace("{HOST}", x_host)
        + f"""\
listen on {x_host} port {mx_port} hostname mx-x.{MTA}.lab
table to_y {{ {", ".join(f'"{d}"' for d in to_y)} }}
action "to_y" relay host smtp://{y_host}:{Y_PORT} src {x_host} helo mx-x.{MTA}.lab
action "dead" relay host smtp://{DEAD_HOST}:{DEAD_PORT} src {x_host} helo mx-x.{MTA}.lab
action "mx" relay src {x_host} helo mx-x.{MTA}.lab
action "to_y_tls" relay host smtp+notls://{y_host}:{Y_TLS_PORT} src {x_host} helo mx-x.{MTA}.lab
action "to_y_noptr" relay host smtp://{y_host}:{Y_NOPTR_PORT} src {x_host} helo mx-x.{MTA}.lab
match from any for domain "{_domain("tls_required")}" action "to_y_tls"
match from any for domain "{_domain("no_ptr")}" action "to_y_noptr"
match from any for domain <to_y> action "to_y"
match from any for domain "{_domain("conn_refused")}" action "dead"
match from any for domain "{_domain("nxdomain")}" action "mx"
match from any for domain "{_domain("dns_servfail")}" action "mx"
"""
    )
    local = [s.domain(MTA) for s in SCENARIOS if s.name != "relay_denied"]
    folder_y = work / f"{MTA}-y"
    folder_y.mkdir(parents=True, exist_ok=True)
    (folder_y / "vusers").write_text("".join(f"alice@{d} opensmtpq\n" for d in local))
    # 6.8's data phase cannot match a recipient: every DATA from x is refused, and only
    # the policy scenario reaches DATA (the others are refused at MAIL or RCPT).
    (folder_y / "policy").write_text(f"{x_host}\n")
    cert, key = throwaway_cert(folder_y, f"mx-y.{MTA}.lab")
    y = (
        common.replace("{HOST}", y_host)
        + f"""\
smtp max-message-size {SIZE_LIMIT}
table vusers file:{folder_y}/vusers
table refuse file:{folder_y}/policy
table grey {{ "@{_domain("greylisted")}" }}
filter "grey" phase rcpt-to match rcpt-to <grey> reject "{GREYLIST_TEXT}"
table ydomains {{ {", ".join(f'"{d}"' for d in local)} }}
filter "policy" phase data match src <refuse> reject "550 5.7.1 Message refused by local policy"
filter "y" chain {{ "grey", "policy" }}
listen on {y_host} port {Y_PORT} hostname mx-y.{MTA}.lab filter "y"
pki mx-y.{MTA}.lab cert "{cert}"
pki mx-y.{MTA}.lab key "{key}"
listen on {y_host} port {Y_TLS_PORT} hostname mx-y.{MTA}.lab tls-require pki mx-y.{MTA}.lab
filter "noptr" phase mail-from match !rdns reject "{NOPTR_TEXT}"
listen on {y_host} port {Y_NOPTR_PORT} hostname mx-y.{MTA}.lab filter "noptr"
action "local" mda "/bin/true" virtual <vusers>
action "users" mda "/bin/true"
match from any for domain "{_domain("unknown_rcpt")}" action "users"
match from any for domain <ydomains> action "local"
"""
    )
    folders = []
    for role, text in (("x", x), ("y", y)):
        folder = work / f"{MTA}-{role}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "smtpd.conf").write_text(text)
        folders.append(folder)
    return folders


def start(folder: Path, root: Path) -> subprocess.Popen[bytes]:
    script = (
        "set -e; for d in /var/spool /var/lib /run; do mount -t tmpfs tmpfs $d; done; "
        "mkdir -p /var/lib/opensmtpd/empty; "
        f"exec {root}/usr/sbin/smtpd -d -f {folder}/smtpd.conf"
    )
    return subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        stdout=(folder / "smtpd.out").open("wb"),
        stderr=subprocess.STDOUT,
    )


def version(root: Path) -> str:
    return "OpenSMTPD 6.8.0p2 (Debian 6.8.0p2-4+b4)"
