"""Benchmark the bounce classifier against the labelled corpus in tests/data/bounce-corpus.

Prints accuracy on ``category`` and ``category7``, per-category recall and precision, the
precision of ``nonexistent_address``, and emails per second; when Debian's ``libsisimai-perl``
is installed, times Sisimai over the same files in the same run and prints the speed ratio. Both
sides are timed alike: files read into memory first, a warm-up pass, then the best of N passes.

With ``--cv`` it runs a grouped cross-validation instead: the group is the label's ``source``
(one MTA or provider family), and each source is scored with the rules that match *only* that
source's emails left out (a rule-based classifier has no training step: a rule is credited on
a fold only if evidence for it exists in the other folds). It prints, per source, the rows, the
accuracy with all rules and held out, and the ``nonexistent_address`` precision held out; then,
for every rule, the sources whose emails it matches, and the special-case rules (one source)
that lack a ``reason`` in ``rules.toml``. The CV counts the original emails only (the CRLF
copies are the same emails).

With ``--bounceparser`` it prints only the report of the second real corpus,
``tests/data/bounceparser`` (BounceParser's test emails, labelled before the classifier
was run on them; see its README); the default run prints it after the lab's.

With ``--process`` it times whole processes instead, start-up and imports included: the
``gateway bounce classify FILE...`` command beside this Python (the console script) against
``perl -MSisimai`` printing ``Sisimai->dump`` for each file, over the same files, alternating in
the same run, best of N. Each side gets one untimed run first (for us it writes the bytecode
cache, as an installed package has one: ``PYTHONDONTWRITEBYTECODE`` is dropped for the child).
Wall-clock and CPU (user + system, from ``wait4``) are both printed; on a busy machine the CPU
figure is the steadier one.

Sisimai comes from Debian's ``libsisimai-perl`` (``apt-get install libsisimai-perl``); the
benchmark prints how to get it when it is missing and skips that side.

Usage:
    python bench/bounces.py [--misses] [--repeat N] [--no-sisimai]
    python bench/bounces.py --cv [--rules-detail]
    python bench/bounces.py --process [--repeat N]
    python bench/bounces.py --bounceparser [--misses]

The corpus is the repository's copy in ``tests/data/bounce-corpus``; set ``$GATEWAY_SHARED`` to
score another folder that holds a ``bounce-corpus/`` of the same layout. A label row is matched
to a report by (file, recipient); a row whose recipient was not found counts as a miss. Where
``tests/data/bounce-corpus-errata.jsonl`` shows that a label's address is not the one the email
names, the row is matched by the email's address (the figure without errata is printed too).
A report with no recipient matches the ARF placeholder address.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gateway.bounce.parse as bounce_parse
from gateway.bounce import BounceReport, parse_bounce
from gateway.bounce.classify import Rules, matching_rules
from gateway.bounce.rules_file import default_rules
from gateway.core.model import Category

PLACEHOLDER = "undisclosed-recipient-in-headers@libsisimai.org.invalid"
MISSING = "(missing)"


def corpus_dir() -> Path:
    """Return the labelled bounce corpus folder (``$GATEWAY_SHARED/bounce-corpus`` if set)."""
    env = os.environ.get("GATEWAY_SHARED")
    base = Path(env) if env else Path(__file__).resolve().parents[1] / "tests" / "data"
    return base / "bounce-corpus"


ERRATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "bounce-corpus-errata.jsonl"


def load_errata() -> dict[tuple[str, str], str]:
    """Read the recipient errata: (file, label recipient) -> the address the email names.

    A few label rows name an address that is not the one in the email (Sisimai 5.1.0, which
    gave the labels their recipients, truncated or mangled it, or it was typed by hand). Each
    erratum quotes the email's own line; ``tests/bounce/test_bounce_corpus.py`` checks them.
    """
    if not ERRATA.exists():
        return {}
    with ERRATA.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return {(row["file"], row["recipient"]): row["in_email"] for row in rows}


def load_labels(corpus: Path, errata: bool = True) -> list[dict[str, str]]:
    """Read ``labels.jsonl`` (one row per recipient per file).

    Args:
        corpus: the corpus folder.
        errata: match the rows the recipient errata name by the address the email gives
            (``match_recipient``); ``False`` scores the labels exactly as given.
    """
    with (corpus / "labels.jsonl").open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    if errata:
        fixes = load_errata()
        for row in rows:
            fixed = fixes.get((row["file"], row["recipient"]))
            if fixed:
                row["match_recipient"] = fixed
    return rows


@dataclass
class Score:
    """Outcome of matching every label row with the parser's reports."""

    rows: int = 0
    correct: int = 0
    correct7: int = 0
    truth: Counter[str] = field(default_factory=Counter)
    predicted: Counter[str] = field(default_factory=Counter)
    hits: Counter[str] = field(default_factory=Counter)
    misses: list[tuple[dict[str, str], BounceReport | None]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.rows if self.rows else 0.0

    @property
    def accuracy7(self) -> float:
        return self.correct7 / self.rows if self.rows else 0.0

    def precision(self, category: str) -> float:
        return self.hits[category] / self.predicted[category] if self.predicted[category] else 1.0

    def recall(self, category: str) -> float:
        return self.hits[category] / self.truth[category] if self.truth[category] else 1.0


def score(corpus: Path, labels: list[dict[str, str]], rules: Rules | None = None) -> Score:
    """Parse every labelled file once and match its reports with the label rows.

    Args:
        corpus: the corpus folder.
        labels: the label rows to score.
        rules: the rules table; the packaged one when ``None``.
    """
    by_file: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in labels:
        by_file[row["file"]].append(row)
    result = Score()
    for name, rows in by_file.items():
        reports = parse_bounce((corpus / name).read_bytes(), rules)
        pool: dict[str, list[BounceReport]] = defaultdict(list)
        for found in reports:
            pool[found.recipient or PLACEHOLDER].append(found)
        for row in sorted(rows, key=lambda r: int(r.get("rcpt_index") or 0)):
            candidates = pool.get(row.get("match_recipient", row["recipient"]), [])
            report = candidates.pop(0) if candidates else None
            got = report.category.value if report and report.category else MISSING
            want = row["category"]
            result.rows += 1
            result.truth[want] += 1
            result.predicted[got] += 1
            if got == want:
                result.correct += 1
                result.hits[want] += 1
            else:
                result.misses.append((row, report))
            if got != MISSING and Category(got).category7 == row["category7"]:
                result.correct7 += 1
    return result


def lab_dir() -> Path:
    """Return the bounce lab's generated corpus (made by ``bench/bounce_lab/lab.py``)."""
    return Path(__file__).resolve().parents[1] / "tests" / "data" / "bounce_lab"


def lab_report() -> Score | None:
    """Score the bounce lab's corpus: one row per scenario per MTA, labelled by construction.

    Rows marked ``ambiguous`` (the MTA's words are those of another scenario) are listed but
    kept out of the figures.
    """
    lab = lab_dir()
    if not (lab / "labels.jsonl").exists():
        print(f"bounce lab corpus not found at {lab}")
        return None
    labels = load_labels(lab)
    clear = [row for row in labels if not row.get("ambiguous")]
    result = score(lab, clear)
    wrong = {(row["file"], row["recipient"]) for row, _ in result.misses}
    print(f"bounce lab ({lab.relative_to(Path.cwd()) if lab.is_relative_to(Path.cwd()) else lab}):")
    print(f"{'mta':<12}{'scenario':<16}{'want':<22}{'got':<22}")
    for row in labels:
        found = {r.recipient: r for r in parse_bounce((lab / row["file"]).read_bytes())}
        report = found.get(row["recipient"])
        got = report.category.value if report and report.category else MISSING
        mark = (
            "ambiguous"
            if row.get("ambiguous")
            else ("MISS" if (row["file"], row["recipient"]) in wrong else "ok")
        )
        mta = row["source"].removeprefix("lab-")
        print(f"{mta:<12}{row['scenario']:<16}{row['category']:<22}{got:<22}{mark}")
    print(
        f"lab: {result.correct}/{result.rows} scenarios correct "
        f"({len(labels) - len(clear)} ambiguous kept out); nonexistent_address precision "
        f"{result.precision('nonexistent_address'):.4f}"
    )
    return result


NOT_A_BOUNCE = "(not a bounce)"
NO_FAILURE = "(no failure)"
_NOT_FAILURES = {Category.AUTO_REPLY, Category.DELIVERED, None}


def bounceparser_dir() -> Path:
    """Return the BounceParser corpus (``tests/data/bounceparser``, see its README)."""
    return Path(__file__).resolve().parents[1] / "tests" / "data" / "bounceparser"


def score_bounceparser(
    corpus: Path, labels: list[dict[str, str]], rules: Rules | None = None
) -> Score:
    """Score the BounceParser corpus: bounce rows as :func:`score` does, ``not_bounce`` rows
    on "no failed recipient reported" (no report, or only auto-replies, successes, delay
    warnings and provider holds).

    Rows marked ``ambiguous`` are not counted.
    """
    clear = [row for row in labels if not row.get("ambiguous")]
    result = score(corpus, [row for row in clear if not row.get("not_bounce")], rules)
    for row in clear:
        if not row.get("not_bounce"):
            continue
        reports = parse_bounce((corpus / row["file"]).read_bytes(), rules)
        # What the gateway would not count as a failure (core.lifecycle): an auto-reply, a
        # success, a delay warning, or a provider's hold until the sender answers a challenge.
        failed = [
            r
            for r in reports
            if r.category not in _NOT_FAILURES
            and r.action != "delayed"
            and not (r.provider_hint and r.category is Category.SPAM_BLOCKED)
        ]
        got = failed[0].category.value if failed and failed[0].category else NO_FAILURE
        result.rows += 1
        result.truth[NOT_A_BOUNCE] += 1
        result.predicted[got] += 1
        if got == NO_FAILURE:
            result.correct += 1
            result.correct7 += 1
            result.hits[NOT_A_BOUNCE] += 1
        else:
            result.misses.append((row, failed[0]))
    return result


def bounceparser_report(misses: bool = False) -> Score | None:
    """Print the BounceParser corpus's figures: accuracy, nonexistent_address precision, recall
    per category, accuracy per source; its ambiguous rows; and with ``misses`` each miss."""
    corpus = bounceparser_dir()
    if not (corpus / "labels.jsonl").exists():
        print(f"BounceParser corpus not found at {corpus}")
        return None
    labels = load_labels(corpus)
    result = score_bounceparser(corpus, labels)
    print("BounceParser corpus (tests/data/bounceparser, never used to write the rules):")
    print(f"rows scored: {result.rows} ({sum(1 for r in labels if r.get('ambiguous'))} ambiguous)")
    print(f"accuracy (category):  {result.accuracy:.4f} ({result.correct}/{result.rows})")
    print(f"accuracy (category7): {result.accuracy7:.4f}")
    nonexistent = "nonexistent_address"
    print(
        f"nonexistent_address precision: {result.precision(nonexistent):.4f} "
        f"({result.hits[nonexistent]}/{result.predicted[nonexistent]})"
    )
    print(f"{'category':<22}{'rows':>6}{'recall':>9}{'predicted':>11}{'precision':>11}")
    for cat in [c.value for c in Category] + [NOT_A_BOUNCE, NO_FAILURE, MISSING]:
        if not result.truth[cat] and not result.predicted[cat]:
            continue
        print(
            f"{cat:<22}{result.truth[cat]:>6}{result.recall(cat):>9.3f}"
            f"{result.predicted[cat]:>11}{result.precision(cat):>11.3f}"
        )
    by_source: Counter[str] = Counter()
    wrong_by_source: Counter[str] = Counter()
    wrong = {(row["file"], row["recipient"]) for row, _ in result.misses}
    for row in labels:
        if row.get("ambiguous"):
            continue
        by_source[row["source"]] += 1
        wrong_by_source[row["source"]] += (row["file"], row["recipient"]) in wrong
    print(f"{'source':<22}{'rows':>6}{'correct':>9}")
    for source, count in by_source.most_common():
        print(f"{source:<22}{count:>6}{count - wrong_by_source[source]:>9}")
    print("ambiguous rows (not counted):")
    for row in labels:
        if not row.get("ambiguous"):
            continue
        found = {r.recipient: r for r in parse_bounce((corpus / row["file"]).read_bytes())}
        report = found.get(row["recipient"])
        got = report.category.value if report and report.category else MISSING
        print(f"  {row['file']} {row['recipient']} label={row['category']} got={got}")
    if misses:
        print("misses:")
        for row, report in result.misses:
            want = NOT_A_BOUNCE if row.get("not_bounce") else row["category"]
            got = report.category.value if report and report.category else MISSING
            print(f"  {row['file']} {row['recipient']} want={want} got={got} ({row['source']})")
            if report is not None:
                print(f"      ours status={report.status} diag={report.diagnostic[:150]!r}")
    return result


def recorded_facts(
    corpus: Path, names: list[str], rules: Rules
) -> list[tuple[str, list[dict[str, object]]]]:
    """For each file, the facts of every classification the parser makes while reading it
    (``parse.decide`` wrapped for the run): what the rules were asked to decide.

    Args:
        corpus: the corpus folder.
        names: the files, relative to ``corpus``.
        rules: the rules table.
    """
    calls: list[dict[str, object]] = []
    original = bounce_parse.decide  # type: ignore[attr-defined]

    def recording(table: Rules, **facts: object) -> Category:
        calls.append(facts)
        return original(table, **facts)  # type: ignore[arg-type]

    found = []
    bounce_parse.decide = recording  # type: ignore[attr-defined,assignment]
    try:
        for name in names:
            calls.clear()
            parse_bounce((corpus / name).read_bytes(), rules)
            found.append((name, list(calls)))
    finally:
        bounce_parse.decide = original  # type: ignore[attr-defined]
    return found


def rule_sources(corpus: Path, labels: list[dict[str, str]], rules: Rules) -> dict[int, set[str]]:
    """For each rule (by position), the sources of the emails whose evidence it matches.

    Every classification the parser makes for a file is recorded (:func:`recorded_facts`)
    and every rule whose conditions hold for it is counted, not just the first.

    Args:
        corpus: the corpus folder.
        labels: the label rows (their files and sources).
        rules: the rules table.
    """
    source_of = {row["file"]: row["source"] for row in labels}
    position = {id(rule): i for i, rule in enumerate(rules.rules)}
    seen: dict[int, set[str]] = defaultdict(set)
    for name, calls in recorded_facts(corpus, list(source_of), rules):
        for facts in calls:
            for rule in matching_rules(rules, **facts):  # type: ignore[arg-type]
                seen[position[id(rule)]].add(source_of[name])
    return seen


def cross_validate(corpus: Path, labels: list[dict[str, str]], detail: bool) -> None:
    """Print the grouped cross-validation (see the module docstring)."""
    rules = default_rules()
    rows = [row for row in labels if row.get("variant", "original") == "original"]
    sources = rule_sources(corpus, rows, rules)
    by_source: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_source[row["source"]].append(row)
    total_all = Score()
    total_out = Score()
    print(
        f"{'source':<26}{'n':>4}{'acc(all)':>10}{'acc(held-out)':>15}"
        f"{'nonexist prec':>15}{'dropped':>9}"
    )
    for source in sorted(by_source, key=lambda s: (-len(by_source[s]), s)):
        group = by_source[source]
        own = {i for i, seen in sources.items() if seen == {source}}
        held = Rules(tuple(r for i, r in enumerate(rules.rules) if i not in own))
        full = score(corpus, group, rules)
        out = score(corpus, group, held)
        for total, part in ((total_all, full), (total_out, out)):
            total.rows += part.rows
            total.correct += part.correct
            total.hits.update(part.hits)
            total.predicted.update(part.predicted)
        predicted = out.predicted["nonexistent_address"]
        prec = f"{out.precision('nonexistent_address'):.3f} ({predicted})" if predicted else "-"
        flag = "  <90%" if out.accuracy < 0.9 else ""
        print(
            f"{source:<26}{full.rows:>4}{full.accuracy:>10.3f}{out.accuracy:>15.3f}"
            f"{prec:>15}{len(own):>9}{flag}"
        )
        if detail:
            for row, report in out.misses:
                got = report.category.value if report and report.category else MISSING
                print(f"      {row['file']} want={row['category']} got={got}")
    print(
        f"{'all sources':<26}{total_all.rows:>4}{total_all.accuracy:>10.3f}"
        f"{total_out.accuracy:>15.3f}"
        f"{total_out.precision('nonexistent_address'):>15.4f}"
    )
    print()
    print("rules and the sources whose emails they match:")
    lacking = []
    for i, rule in enumerate(rules.rules):
        seen = sources.get(i, set())
        label = ", ".join(sorted(seen)) if seen else "(no DEV email)"
        mark = ""
        if len(seen) == 1:
            if rule.reason:
                mark = "  [special case: reason given]"
            else:
                mark = "  [SPECIAL CASE, NO REASON]"
                lacking.append(rule.name)
        print(f"  {rule.name:<32}{rule.category.value:<21}{len(seen):>3}  {label}{mark}")
    print()
    if lacking:
        print(f"special-case rules lacking a reason ({len(lacking)}): {', '.join(lacking)}")
    else:
        print("special-case rules lacking a reason: none")


def all_files(corpus: Path) -> list[Path]:
    """Return the originals and the CRLF copies."""
    emails = corpus / "emails"
    return sorted(emails.glob("*.eml")) + sorted((emails / "crlf").glob("*.eml"))


def time_ours(files: list[Path], repeat: int) -> float:
    """Return the best emails/s over ``repeat`` passes (bytes read before timing)."""
    blobs = [path.read_bytes() for path in files]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for blob in blobs:
            parse_bounce(blob)
        best = min(best, time.perf_counter() - start)
    return len(blobs) / best


# Timed like ours: the files are read into memory first, one untimed warm-up pass loads
# Sisimai's lazily required modules (ours is warmed by the scoring pass), then the best of
# ``repeat`` passes is kept. Sisimai->make accepts a scalar reference (Sisimai::Mail::Memory)
# and gives the same results as reading the file path.
_PERL = r"""
use strict; use warnings; use Sisimai; use Time::HiRes qw(time);
my $repeat = shift @ARGV;
my @blobs;
for my $f (@ARGV) {
    open(my $fh, '<:raw', $f) or die "$f: $!"; local $/; push @blobs, scalar <$fh>; close $fh;
}
Sisimai->make(\$_) for @blobs;
my $best;
for (1 .. $repeat) {
    my $t0 = time;
    Sisimai->make(\$_) for @blobs;
    my $dt = time - $t0;
    $best = $dt if !defined $best || $dt < $best;
}
printf "%d %.6f\n", scalar @blobs, $best;
"""


def time_sisimai(files: list[Path], repeat: int = 1) -> float | None:
    """Return Sisimai's best emails/s over the same files, or ``None`` when not installed.

    Args:
        files: the corpus files (the same list :func:`time_ours` times).
        repeat: timed passes after one warm-up pass; the best is kept.
    """
    perl = shutil.which("perl")
    if perl is None:
        return None
    probe = subprocess.run([perl, "-MSisimai", "-e1"], capture_output=True, check=False)
    if probe.returncode != 0:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".pl", delete=False) as handle:
        handle.write(_PERL)
        script = handle.name
    try:
        # The script times the batch itself, so perl and module start-up are excluded.
        out = subprocess.run(
            [perl, script, str(max(1, repeat)), *map(str, files)],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        Path(script).unlink(missing_ok=True)
    count, seconds = out.stdout.split()
    return int(count) / float(seconds)


_SISIMAI_DUMP = 'print Sisimai->dump($_), "\\n" for @ARGV'


def _run_once(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``command`` with its output discarded; return (wall seconds, CPU seconds)."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
    if child.stderr:
        child.stderr.close()
    if child.returncode not in (0, 1):  # 1: a file could not be read, the rest were
        msg = f"{command[0]} exited {child.returncode}: {stderr[-500:]}"
        raise RuntimeError(msg)
    return wall, usage.ru_utime + usage.ru_stime


def gateway_command() -> list[str]:
    """The ``gateway`` console script beside this Python, else ``python -m gateway``."""
    script = Path(sys.executable).with_name("gateway")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway"]


def time_processes(files: list[Path], repeat: int) -> None:
    """Print the whole-process timing of ``gateway bounce classify`` against Sisimai."""
    names = [str(path) for path in files]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    sides = {"gateway": [*gateway_command(), "bounce", "classify", *names]}
    perl = shutil.which("perl")
    if (
        perl
        and subprocess.run([perl, "-MSisimai", "-e1"], capture_output=True, check=False).returncode
        == 0
    ):
        sides["sisimai"] = [perl, "-MSisimai", "-e", _SISIMAI_DUMP, *names]
    else:
        print("sisimai: not installed (apt-get install libsisimai-perl); timing ours only")
    best: dict[str, tuple[float, float]] = {}
    for side, command in sides.items():
        _run_once(command, env)  # warm-up: page cache, and our bytecode cache
        best[side] = (float("inf"), float("inf"))
    for _ in range(repeat):
        for side, command in sides.items():
            wall, cpu = _run_once(command, env)
            best[side] = (min(best[side][0], wall), min(best[side][1], cpu))
    print(f"whole process over {len(names)} files, best of {repeat} (alternating):")
    for side, (wall, cpu) in best.items():
        print(f"  {side:<8} wall {wall:7.3f} s   cpu {cpu:7.3f} s   {' '.join(sides[side][:3])} …")
    if "sisimai" in best:
        (ours_wall, ours_cpu), (their_wall, their_cpu) = best["gateway"], best["sisimai"]
        print(
            f"ratio sisimai/gateway (how many times faster we are): "
            f"wall {their_wall / ours_wall:.2f}, cpu {their_cpu / ours_cpu:.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", action="store_true", help="list mismatching rows")
    parser.add_argument("--repeat", type=int, default=3, help="timing passes (best is kept)")
    parser.add_argument("--no-sisimai", action="store_true", help="skip timing Sisimai")
    parser.add_argument(
        "--cv", action="store_true", help="grouped cross-validation by source (no timing)"
    )
    parser.add_argument(
        "--rules-detail", action="store_true", help="with --cv: list each source's misses"
    )
    parser.add_argument(
        "--bounceparser",
        action="store_true",
        help="only the BounceParser corpus's report (tests/data/bounceparser; with --misses)",
    )
    parser.add_argument(
        "--process",
        action="store_true",
        help="time whole processes (gateway bounce classify vs perl Sisimai), start-up included",
    )
    args = parser.parse_args(argv)
    corpus = corpus_dir()
    if not (corpus / "labels.jsonl").exists():
        print(f"corpus not found at {corpus}; restore tests/data/bounce-corpus", file=sys.stderr)
        return 2
    if args.cv:
        cross_validate(corpus, load_labels(corpus), args.rules_detail)
        return 0
    if args.process:
        time_processes(all_files(corpus), max(1, args.repeat))
        return 0
    if args.bounceparser:
        bounceparser_report(args.misses)
        return 0
    result = score(corpus, load_labels(corpus))
    as_labelled = score(corpus, load_labels(corpus, errata=False))
    originals = score(
        corpus, [r for r in load_labels(corpus) if r.get("variant", "original") == "original"]
    )
    print(f"rows: {result.rows} (originals and crlf copies)")
    print(
        f"accuracy (category):  {result.accuracy:.4f}   originals only: {originals.accuracy:.4f}"
        f" ({originals.correct}/{originals.rows})"
    )
    print(
        f"  as labelled, without the {len(load_errata())} recipient errata of "
        f"{ERRATA.name}: {as_labelled.accuracy:.4f}"
    )
    print(f"accuracy (category7): {result.accuracy7:.4f}")
    print(f"nonexistent_address precision: {result.precision('nonexistent_address'):.4f}")
    print()
    print(f"{'category':<22}{'rows':>6}{'recall':>9}{'predicted':>11}{'precision':>11}")
    for cat in [c.value for c in Category] + [MISSING]:
        if not result.truth[cat] and not result.predicted[cat]:
            continue
        print(
            f"{cat:<22}{result.truth[cat]:>6}{result.recall(cat):>9.3f}"
            f"{result.predicted[cat]:>11}{result.precision(cat):>11.3f}"
        )
    print()
    lab_report()
    print()
    bounceparser_report(args.misses)
    files = all_files(corpus)
    ours = time_ours(files, max(1, args.repeat))
    print()
    print(f"ours: {ours:,.0f} emails/s over {len(files)} files (best of {args.repeat})")
    if args.no_sisimai:
        print("sisimai: skipped (--no-sisimai)")
    else:
        theirs = time_sisimai(files, max(1, args.repeat))
        if theirs is None:
            print("sisimai: not installed (apt-get install libsisimai-perl); skipped")
        else:
            print(
                f"sisimai: {theirs:,.0f} emails/s (best of {args.repeat}); "
                f"ratio ours/sisimai = {ours / theirs:.2f}"
            )
    if args.misses:
        print()
        for row, report in result.misses:
            got = report.category.value if report and report.category else MISSING
            print(f"{row['file']} {row['recipient']} want={row['category']} got={got}")
            print(f"    reason={row.get('sisimai_reason')} status={row.get('status')}")
            if report is not None:
                print(f"    ours status={report.status} diag={report.diagnostic[:160]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
