"""The site's search index, built at generate time: sorted tokens, each with the nodes it is in.

The page finds the tokens starting with each word typed by binary search over the sorted list,
so a keystroke costs a few lookups instead of a scan over every node. A posting is
`node * 8 + field`, the field saying where the token was found (it ranks the results, and a
whole column name is shown as the reason a node matched).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

NAME, COLUMN, DESCRIPTION, OTHER, NAME_PART, COLUMN_PART = 0, 1, 2, 3, 4, 5
_PART_OF = {NAME: NAME_PART, COLUMN: COLUMN_PART}
_WORD = re.compile(r"[a-z0-9]+")
# Words too common in descriptions to be worth a posting list each.
_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "the",
        "this",
        "that",
        "to",
        "with",
    ]
)


@dataclass
class SearchIndex:
    postings: dict[str, set[int]] = field(default_factory=dict)

    def add(self, node: int, text: str | None, where: int) -> None:
        """Index `text` for `node`; a name or column name as a whole and by its words."""
        if not text:
            return
        if where in _PART_OF:
            whole = text.lower().strip()
            self.postings.setdefault(whole, set()).add(node * 8 + where)
            for token in words(text) - {whole}:
                self.postings.setdefault(token, set()).add(node * 8 + _PART_OF[where])
            return
        for token in words(text):
            if len(token) > 1:
                self.postings.setdefault(token, set()).add(node * 8 + where)

    def add_all(self, node: int, texts: Iterable[str], where: int) -> None:
        for text in texts:
            self.add(node, text, where)

    def data(self) -> dict[str, list]:
        """{"tokens": sorted tokens, "postings": posting lists in the same order}."""
        ordered = sorted(self.postings)
        return {"tokens": ordered, "postings": [sorted(self.postings[t]) for t in ordered]}


def words(text: str) -> set[str]:
    """The lower-case words of `text`, without the most common English ones."""
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP_WORDS}
