"""In-context learning tasks: the mapping exists only in the prompt, so k-shot accuracy measures ICL.

- `lexicon`: an invented lexicon. Each episode pairs `size` invented words with `size` English words
  at random; the question asks for one word's translation ("bazdo->"). With k >= 1 shots the
  demonstrations (drawn from the same episode) include the asked word; at 0 shots only chance.
- `labels`: a random label permutation (Wei et al. 2023, semantically unrelated labels). Numbers
  0..999 fall into `classes` ranges; each episode names the ranges with a random permutation of
  meaningless labels, so the label of "37=>" is only knowable from the demonstrations.

Both override `shots_for` so demonstrations share the question's episode.
"""

from __future__ import annotations

import random
from typing import Any

from emergelab.errors import UserError
from emergelab.tasks.base import Example, Task

SOURCE_WORDS = tuple(
    a + b + c for a in "bdgkmpstvz" for b in "aiou" for c in ("zb", "vd", "kv", "fm", "pk", "gz")
)
TARGET_WORDS = ("red", "blue", "green", "sun", "moon", "star", "tree", "rock", "fish", "bird", "milk",
                "bread", "door", "hand", "rain", "snow", "fire", "salt", "ship", "king", "book", "cup",
                "hill", "road", "bell", "coin", "ring", "lamp", "leaf", "wolf", "gold", "iron")
LABEL_WORDS = ("ka", "mo", "ti", "ru", "pe", "zo", "lu", "ni")


class Lexicon(Task):
    """Translate an invented word using an episode-specific lexicon shown in the prompt."""

    name = "lexicon"
    description = "invented lexicon word->word, learned only from the prompt (ICL)"
    answer_alphabet = "abcdefghijklmnopqrstuvwxyz"
    supports_cot = False

    def __init__(self, size: int = 4, **options: Any) -> None:
        super().__init__(**options)
        if not 2 <= int(size) <= 16:
            raise UserError("size: lexicon size must be between 2 and 16")
        self.size = int(size)

    def options(self) -> dict[str, Any]:
        return {"size": self.size}

    def _sample(self, rng: random.Random) -> Example:
        mapping = dict(zip(rng.sample(SOURCE_WORDS, self.size), rng.sample(TARGET_WORDS, self.size)))
        query = rng.choice(list(mapping))
        return self._item(mapping, query)

    @staticmethod
    def _item(mapping: dict[str, str], query: str) -> Example:
        return Example(f"{query}->", mapping[query], None,
                       {"mapping": [[s, t] for s, t in mapping.items()], "query": query})

    def key(self, example: Example) -> str:
        return f"{sorted(map(tuple, example.meta['mapping']))}|{example.meta['query']}"

    def split_key(self, example: Example) -> str:
        return example.meta["query"]

    def shots_for(self, example: Example, k: int, seed: int = 0) -> list[Example]:
        if k <= 0:
            return []
        mapping = dict(map(tuple, example.meta["mapping"]))
        rng = random.Random(f"{self.key(example)}|shots|{seed}")
        words = [example.meta["query"]] + [rng.choice(list(mapping)) for _ in range(k - 1)]
        rng.shuffle(words)
        return [self._item(mapping, w) for w in words]

    def check(self, example: Example, predicted: str) -> tuple[bool, str]:
        want = dict(map(tuple, example.meta["mapping"]))[example.meta["query"]]
        ok = predicted.strip() == want
        return ok, "correct" if ok else f"expected {want}, got {predicted.strip()}"

    @property
    def chance(self) -> float:
        return 1 / self.size


class Labels(Task):
    """Classify a number into one of `classes` equal ranges of 0..999, named by episode-random labels."""

    name = "labels"
    description = "number ranges named by a random label permutation per episode (ICL)"
    answer_alphabet = "".join(sorted(set("".join(LABEL_WORDS))))
    supports_cot = False

    def __init__(self, classes: int = 2, **options: Any) -> None:
        super().__init__(**options)
        if not 2 <= int(classes) <= len(LABEL_WORDS):
            raise UserError(f"classes: must be between 2 and {len(LABEL_WORDS)}")
        self.classes = int(classes)

    def options(self) -> dict[str, Any]:
        return {"classes": self.classes}

    def _class_of(self, x: int) -> int:
        return x * self.classes // 1000

    def _item(self, labels: list[str], x: int) -> Example:
        return Example(f"{x}=>", labels[self._class_of(x)], None, {"labels": labels, "x": x})

    def _sample(self, rng: random.Random) -> Example:
        return self._item(rng.sample(LABEL_WORDS, self.classes), rng.randrange(1000))

    def key(self, example: Example) -> str:
        return f"{example.meta['labels']}|{example.meta['x']}"

    def split_key(self, example: Example) -> str:
        return str(example.meta["x"])

    def shots_for(self, example: Example, k: int, seed: int = 0) -> list[Example]:
        """k demonstrations with the same labels, cycling through the classes (balanced)."""
        rng = random.Random(f"{self.key(example)}|shots|{seed}")
        xs = []
        for i in range(k):
            members = [x for x in range(1000) if self._class_of(x) == i % self.classes]
            xs.append(rng.choice(members))
        rng.shuffle(xs)
        return [self._item(example.meta["labels"], x) for x in xs]

    def check(self, example: Example, predicted: str) -> tuple[bool, str]:
        want = example.meta["labels"][example.meta["x"] * self.classes // 1000]
        ok = predicted.strip() == want
        return ok, "correct" if ok else f"expected {want}, got {predicted.strip()}"

    @property
    def chance(self) -> float:
        return 1 / self.classes
