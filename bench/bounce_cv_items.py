"""A stricter cross-validation: hold out every phrase that only one source's emails contain.

``bench/bounces.py --cv`` holds out whole *rules* that match one source only. Most rules are
long phrase lists, though, and a phrase added for one email is as much a fit as a rule added
for it. Here each source (the labels' ``source``: one MTA or provider family) is scored with a
table from which every phrase, sequence, regex and ``unless`` word found in that source's
texts *and in no other source's* has been removed (a rule left with no words is dropped).
Words found in no DEV email stay: they were written from other evidence (the bounce lab,
Sisimai's phrase lists, flufl.bounce, BounceParser's corpus, RFCs and vendors' documentation).

The texts are the ones the classifier reads for each failure (the remote server's words, and
those words with the reporting MTA's explanation), recorded while parsing.

Usage::

    python bench/bounce_cv_items.py [--detail]

The figure this prints is the closest to "bounces the rules never saw" that DEV gives.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bounces import MISSING, Score, corpus_dir, load_labels, recorded_facts, score
from gateway.bounce.classify import Rule, Rules, _in_order, normalise
from gateway.bounce.rules_file import default_rules
from gateway.core.model import Category

NONEXISTENT = Category.NONEXISTENT_ADDRESS.value


def texts_by_source(
    corpus: Path, rows: list[dict[str, str]], rules: Rules, key: str = "source"
) -> dict[str, set[str]]:
    """The normalised texts the classifier reads for each group's emails (``key``: the label
    field that names the group, ``source`` or ``file``)."""
    group_of = {row["file"]: row[key] for row in rows}
    texts: dict[str, set[str]] = defaultdict(set)
    for name, calls in recorded_facts(corpus, list(group_of), rules):
        for facts in calls:
            diagnostic = str(facts.get("diagnostic") or "")
            context = str(facts.get("context") or "")
            texts[group_of[name]].add(normalise(diagnostic))
            if context:
                texts[group_of[name]].add(normalise(f"{diagnostic}\n{context}"))
    return texts


def _items(rule: Rule) -> list[tuple[str, object]]:
    return [
        *(("phrase", p) for p in rule.phrases),
        *(("sequence", s) for s in rule.sequences),
        *(("regex", r) for r in rule.regexes),
        *(("unless", u) for u in rule.unless),
    ]


def _found(kind: str, item: object, text: str) -> bool:
    if kind in {"phrase", "unless"}:
        return str(item) in text
    if kind == "sequence":
        return _in_order(text, item)  # type: ignore[arg-type]
    return bool(item.search(text))  # type: ignore[attr-defined]


def item_sources(
    rules: Rules, texts: dict[str, set[str]]
) -> dict[tuple[int, str, object], set[str]]:
    """For every word of every rule, the sources whose texts contain it."""
    found: dict[tuple[int, str, object], set[str]] = {}
    for position, rule in enumerate(rules.rules):
        for kind, item in _items(rule):
            found[position, kind, item] = {
                source
                for source, source_texts in texts.items()
                if any(_found(kind, item, text) for text in source_texts)
            }
    return found


def without(rules: Rules, source: str, found: dict[tuple[int, str, object], set[str]]) -> Rules:
    """``rules`` less every word only ``source``'s texts contain."""
    kept = []
    for position, rule in enumerate(rules.rules):

        def keep(kind: str, item: object, position: int = position) -> bool:
            return found[position, kind, item] != {source}

        phrases = tuple(p for p in rule.phrases if keep("phrase", p))
        sequences = tuple(s for s in rule.sequences if keep("sequence", s))
        regexes = tuple(r for r in rule.regexes if keep("regex", r))
        unless = tuple(u for u in rule.unless if keep("unless", u))
        if rule.textual and not (phrases or sequences or regexes):
            continue
        kept.append(
            Rule(
                name=rule.name,
                category=rule.category,
                source=rule.source,
                statuses=rule.statuses,
                replies=rule.replies,
                phrases=phrases,
                sequences=sequences,
                regexes=regexes,
                unless=unless,
                commands=rule.commands,
                not_commands=rule.not_commands,
                actions=rule.actions,
                providers=rule.providers,
                fallback=rule.fallback,
                textual=rule.textual,
                reason=rule.reason,
            )
        )
    return Rules(tuple(kept))


def _add(total: Score, part: Score) -> None:
    total.rows += part.rows
    total.correct += part.correct
    total.hits.update(part.hits)
    total.predicted.update(part.predicted)


def held_out_score(by: str = "source") -> tuple[Score, Score]:
    """Score DEV with every rule, and each group with its own words left out.

    Args:
        by: ``source`` (a whole MTA or provider family) or ``email``.
    """
    key = "source" if by == "source" else "file"
    corpus = corpus_dir()
    rules = default_rules()
    rows = [row for row in load_labels(corpus) if row.get("variant", "original") == "original"]
    found = item_sources(rules, texts_by_source(corpus, rows, rules, key))
    groups: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        groups[row[key]].append(row)
    total_all, total_out = Score(), Score()
    for name, group in groups.items():
        _add(total_all, score(corpus, group, rules))
        _add(total_out, score(corpus, group, without(rules, name, found)))
    return total_all, total_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detail", action="store_true", help="list each group's misses")
    parser.add_argument(
        "--by",
        choices=("source", "email"),
        default="source",
        help="the group held out: a whole source (MTA or provider family), or one email",
    )
    args = parser.parse_args(argv)
    key = "source" if args.by == "source" else "file"
    corpus = corpus_dir()
    rules = default_rules()
    rows = [row for row in load_labels(corpus) if row.get("variant", "original") == "original"]
    found = item_sources(rules, texts_by_source(corpus, rows, rules, key))
    by_source: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_source[row[key]].append(row)
    total_all, total_out = Score(), Score()
    print(f"{'source':<26}{'n':>4}{'acc(all)':>10}{'acc(words out)':>16}{'words out':>11}")
    for source in sorted(by_source, key=lambda s: (-len(by_source[s]), s)):
        group = by_source[source]
        dropped = sum(1 for sources in found.values() if sources == {source})
        full = score(corpus, group, rules)
        out = score(corpus, group, without(rules, source, found))
        _add(total_all, full)
        _add(total_out, out)
        flag = "  <90%" if out.accuracy < 0.9 else ""
        if key == "source" or (args.detail and out.misses):
            print(
                f"{source:<26}{full.rows:>4}{full.accuracy:>10.3f}{out.accuracy:>16.3f}"
                f"{dropped:>11}{flag}"
            )
        if args.detail:
            for row, report in out.misses:
                got = report.category.value if report and report.category else MISSING
                print(f"      {row['file']} want={row['category']} got={got}")
    single = sum(1 for sources in found.values() if len(sources) == 1)
    unused = sum(1 for sources in found.values() if not sources)
    print(
        f"{'all sources':<26}{total_all.rows:>4}{total_all.accuracy:>10.3f}"
        f"{total_out.accuracy:>16.3f}"
    )
    print(
        f"nonexistent_address precision: all words {total_all.precision(NONEXISTENT):.4f}, "
        f"each source's own words out {total_out.precision(NONEXISTENT):.4f} "
        f"({total_out.predicted[NONEXISTENT]} given)"
    )
    print(
        f"words of the table: {len(found)}; in one {args.by}'s texts only: {single}; "
        f"in no DEV text: {unused}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
