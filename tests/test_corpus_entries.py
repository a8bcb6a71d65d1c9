"""One test per corpus entry: each must reach its recorded outcome and pass where fixed."""

from pathlib import Path

import pytest

from pcpfuzz.corpus import MalformedEntry, load_entry
from pcpfuzz.replay import replay_entry

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
ENTRIES = sorted(CORPUS.rglob("*.json"))


@pytest.mark.parametrize("path", ENTRIES, ids=[str(p.relative_to(CORPUS)) for p in ENTRIES])
def test_entry_replays_as_recorded(path: Path):
    try:
        result = replay_entry(load_entry(path), path)
    except MalformedEntry as e:
        pytest.fail(str(e), pytrace=False)
    problems = [
        f"on {d.profile}, from action {d.at}: expected {d.expected}; actual {d.actual}"
        for d in result.divergences
    ]
    assert not problems, "\n".join(problems)
