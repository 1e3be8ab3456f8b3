"""classify_files: JSON lines per report, one line for files without reports, exit codes."""

from __future__ import annotations

import atexit
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.bounce.cli import _json_line, _read, classify_files, main
from gateway.cli.main import _exit_now

REQUIRED = {
    "file",
    "recipient",
    "category",
    "status",
    "diagnostic",
    "kind",
    "action",
    "reply_code",
    "remote_mta",
    "feedback_type",
}


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_reports_and_placeholders(corpus: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.eml"
    plain.write_bytes(b"From: a@example.com\nSubject: hi\n\nhello\n")
    multi = str(corpus / "emails" / "lhost-mailru-03.eml")
    arf = str(corpus / "emails" / "arf-11.eml")
    out = io.StringIO()
    assert classify_files([multi, arf, str(plain)], out) == 0
    lines = _lines(out.getvalue())
    assert all(set(line) >= REQUIRED for line in lines)
    assert [line["file"] for line in lines] == [multi, multi, arf, str(plain)]
    assert {line["recipient"]: line["category"] for line in lines[:2]} == {
        "mikeneko@example.jp": "mailbox_full",
        "sabineko@example.jp": "nonexistent_address",
    }
    assert lines[2]["recipient"] is None
    assert lines[2]["category"] == "complaint"
    placeholder = lines[3]
    assert (placeholder["recipient"], placeholder["category"], placeholder["kind"]) == (
        None,
        None,
        "none",
    )


def test_unreadable_file_sets_exit_code_and_continues(corpus: Path, tmp_path: Path) -> None:
    good = str(corpus / "emails" / "lhost-postfix-03.eml")
    out = io.StringIO()
    assert classify_files([str(tmp_path / "missing.eml"), good], out) == 1
    lines = _lines(out.getvalue())
    assert lines[0]["kind"] == "unparseable"
    assert lines[0]["category"] is None
    assert "error" in lines[0]
    assert lines[1]["category"] == "nonexistent_address"


def test_thousands_of_files_in_one_process(corpus: Path) -> None:
    files = [str(p) for p in sorted((corpus / "emails").glob("*.eml"))] * 6
    out = io.StringIO()
    assert classify_files(files, out) == 0
    lines = _lines(out.getvalue())
    assert len(lines) >= len(files)
    assert {line["file"] for line in lines} == set(files)


def test_module_entry_point_and_bad_rules(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "rules.toml"
    bad.write_text('[[rule]]\ncategory = "nope"\n', encoding="utf-8")
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"From: a@example.com\n\nhi\n")
    assert main(["--rules", str(bad), str(msg)]) == 2
    assert "rule 0" in capsys.readouterr().err
    assert main([str(msg)]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "none"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        'quote " backslash \\ slash / tab \t newline \n nul \x00 bell \x07',
        "Não entregue — 届きません \u2028 \ud83d\ude00 \U0001f600",
        550,
        -1,
        10**30,
        True,
        False,
        1.5,
        ["a", None],
    ],
)
def test_json_lines_are_json_dumps(value: object) -> None:
    line = {"file": "f.eml", "recipient": value, "category": "mailbox_full", "reply_code": 550}
    assert _json_line(line) == json.dumps(line, ensure_ascii=False) + "\n"


def test_large_and_unreadable_inputs_are_read_like_open(tmp_path: Path) -> None:
    big = tmp_path / "big.eml"
    body = b"".join(b"line %06d of a long bounce\n" % n for n in range(20000))  # > 4 reads
    big.write_bytes(b"From: MAILER-DAEMON@example.com\nSubject: x\n\n" + body)
    assert _read(str(big)) == big.read_bytes()
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    assert _read(str(empty)) == b""
    out = io.StringIO()
    assert classify_files([str(tmp_path), str(big)], out) == 1  # a folder is not a file
    lines = _lines(out.getvalue())
    assert lines[0]["kind"] == "unparseable"
    assert lines[0]["error"] == "IsADirectoryError: Is a directory"
    assert lines[1]["file"] == str(big)


def test_the_command_ends_with_every_line_written_and_its_status(
    corpus: Path, tmp_path: Path
) -> None:
    """``gateway bounce classify`` ends the process itself once its output is flushed
    (gateway.cli.main._exit_now): the lines and the exit status are those of classify_files."""
    files = [str(p) for p in sorted((corpus / "emails").glob("*.eml"))[:120]]
    expected = io.StringIO()
    assert classify_files(files, expected) == 0
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for extra, status in (([], 0), ([str(tmp_path / "missing.eml")], 1)):
        out = tmp_path / "out.jsonl"
        with out.open("wb") as handle:
            done = subprocess.run(
                [sys.executable, "-m", "gateway", "bounce", "classify", *files, *extra],
                stdout=handle,
                stderr=subprocess.PIPE,
                env=env,
                timeout=120,
                check=False,
            )
        assert done.returncode == status, done.stderr
        text = out.read_text(encoding="utf-8")
        assert text.startswith(expected.getvalue())
        assert text.count("\n") == expected.getvalue().count("\n") + len(extra)


def test_no_early_exit_while_something_waits_for_the_exit() -> None:
    def noop() -> None:
        return None

    atexit.register(noop)  # as a library or a test runner may have
    try:
        _exit_now(0)  # returns: the interpreter ends as usual and runs it
    finally:
        atexit.unregister(noop)
