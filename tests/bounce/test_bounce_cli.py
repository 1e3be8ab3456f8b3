"""classify_files: JSON lines per report, one line for files without reports, exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path

from gateway.bounce.cli import classify_files, main

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
