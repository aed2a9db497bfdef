"""Syllogisms: categorical premises, answered yes / no / cannot tell / contradiction.

Statements (meta triples): ("all", S, P) "every S is a P"; ("no", S, P) "no S is a P";
("some", S, P) "some S is a P"; ("some_not", S, P) "some S is not a P". Convention, stated in the
docs: every named category has members (existential import), so "every A is a B. no A is a B."
is a contradiction.

Items are built from templates whose label is known by construction; the tests check every label
by enumerating set models of the premises. `hops` is the number of deduction steps a valid chain
needs (hops=1 is the classic three-term syllogism; 3 and 5 follow PrOntoQA). Forms:

    yes            barbara chain (all…all ⊢ all), celarent chain (all…no ⊢ no)
    no             chain ⊢ the negation of the question (all…no vs "every?"; all…all vs "no?"/"not?")
    cannot tell    undistributed middle, illicit major, illicit minor, converse
    contradiction  a chain whose conclusion a further premise denies

Vocabularies (the pitfalls in EXPERIMENTS.md): `nonce` words; `real` words from a small taxonomy,
sampled so that the logical answer agrees or conflicts with world knowledge in both directions
(logic yes / world no, logic no / world yes); `mixed` real query terms with nonce middle terms,
so "real word" is not a cue. `meta["content"]` is nonce, agree, conflict or neutral (real words
but the logic answer is cannot tell / contradiction). Distractor premises over unrelated terms
and shuffled premise order mean no single premise-matching rule solves the items.
"""

from __future__ import annotations

import random
from typing import Any

from emergelab.errors import UserError
from emergelab.tasks.base import Example, Task

LABELS = ("yes", "no", "cannot tell", "contradiction")
VOCABS = ("nonce", "real", "mixed", "any")

# A small taxonomy (child -> parent); siblings are disjoint, a child is a proper subset of its parent.
TAXONOMY: dict[str, str | None] = {
    "thing": None, "animal": "thing", "plant": "thing", "vehicle": "thing",
    "vertebrate": "animal", "insect": "animal", "mammal": "vertebrate", "bird": "vertebrate",
    "fish": "vertebrate", "reptile": "vertebrate", "carnivore": "mammal", "rodent": "mammal",
    "primate": "mammal", "canine": "carnivore", "feline": "carnivore", "dog": "canine",
    "wolf": "canine", "fox": "canine", "poodle": "dog", "beagle": "dog", "cat": "feline",
    "lion": "feline", "tiger": "feline", "mouse": "rodent", "rat": "rodent", "ape": "primate",
    "monkey": "primate", "eagle": "bird", "owl": "bird", "sparrow": "bird", "penguin": "bird",
    "shark": "fish", "trout": "fish", "salmon": "fish", "snake": "reptile", "lizard": "reptile",
    "ant": "insect", "bee": "insect", "beetle": "insect", "tree": "plant", "flower": "plant",
    "oak": "tree", "pine": "tree", "rose": "flower", "tulip": "flower", "car": "vehicle",
    "boat": "vehicle", "truck": "vehicle",
}
REAL_WORDS = tuple(TAXONOMY)


def _nonce_words(n: int = 96) -> tuple[str, ...]:
    """Pronounceable invented words (consonant, vowel, an un-English cluster, vowel: "bazdo"),
    fixed by a seed; the clusters keep them clear of real English words."""
    rng = random.Random("nonce-words")
    clusters = ["zb", "vd", "gz", "kv", "fm", "pk", "tz", "dv", "bz", "mk", "zd", "vb", "fk", "gv"]
    words: list[str] = []
    while len(words) < n:
        w = rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") + rng.choice(clusters) + rng.choice("aiou")
        if w not in words:
            words.append(w)
    return tuple(words)


NONCE_WORDS = _nonce_words()


def _ancestors(term: str) -> set[str]:
    out = {term}
    while TAXONOMY[term] is not None:
        term = TAXONOMY[term]
        out.add(term)
    return out


def world_truth(q: str, s: str, p: str) -> bool:
    """The statement's truth in the taxonomy (both terms real)."""
    sub = p in _ancestors(s)  # every s is a p
    overlap = sub or s in _ancestors(p)
    return {"all": sub, "no": not overlap, "some": overlap, "some_not": not sub}[q]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def render_statement(q: str, s: str, p: str) -> str:
    a = _article(p)
    return {"all": f"every {s} is {a} {p}", "no": f"no {s} is {a} {p}",
            "some": f"some {s} is {a} {p}", "some_not": f"some {s} is not {a} {p}"}[q]


def render_question(q: str, s: str, p: str) -> str:
    a = _article(p)
    return {"all": f"is every {s} {a} {p}?", "no": f"is no {s} {a} {p}?",
            "some": f"is some {s} {a} {p}?", "some_not": f"is some {s} not {a} {p}?"}[q]


# ---- templates: premises over integer term slots, a question, the form, derived facts -----------
Statement = tuple[str, int, int]


def _path(nodes: list[int]) -> list[Statement]:
    """every n0 is a n1, every n1 is a n2, ..."""
    return [("all", a, b) for a, b in zip(nodes, nodes[1:])]


def _derive(nodes: list[int]) -> list[Statement]:
    """Facts derived along a path n0 -> n1 -> ...: every n0 is a n2, ..., every n0 is a n_last."""
    return [("all", nodes[0], b) for b in nodes[2:]]


def _template(label: str, h: int, rng: random.Random) -> tuple[list[Statement], Statement, str, list]:
    """(premises, question, form, derived facts) over slots 0..h+1; the label holds by construction
    (the tests re-derive it by enumerating set models). A chain has h+1 links, so h deductions.
    Every label is asked with several quantifiers, so the question's form is no cue to the answer."""
    chain, end = list(range(h + 2)), h + 1
    short = chain[:-1]  # 0 -> ... -> h, then a "no" link to the end
    if label == "yes":
        if rng.random() < 0.5:
            q = rng.choice([("all", 0, end), ("some", 0, end), ("some", end, 0)])
            return _path(chain), q, "barbara", _derive(chain)
        prem = _path(short) + [("no", h, end)]
        q = rng.choice([("no", 0, end), ("some_not", 0, end), ("no", end, 0)])
        return prem, q, "celarent", _derive(short) + [("no", 0, end)]
    if label == "no":
        if rng.random() < 0.5:
            prem = _path(short) + [("no", h, end)]
            q = rng.choice([("all", 0, end), ("some", 0, end), ("some", end, 0)])
            return prem, q, "celarent_denied", _derive(short) + [("no", 0, end)]
        q = rng.choice([("no", 0, end), ("some_not", 0, end), ("no", end, 0)])
        return _path(chain), q, "barbara_denied", _derive(chain)
    if label == "cannot tell":
        form = rng.choice(["undistributed_middle", "illicit_major", "illicit_minor", "converse"])
        k = rng.randint(1, h)  # links on the first branch; the second gets h+1-k
        if form == "undistributed_middle":  # 0 -> ... -> k <- ... <- end  ⊬  anything about 0, end
            left, right = chain[:k + 1], chain[k:][::-1]
            q = (rng.choice(["all", "no", "some", "some_not"]), *rng.sample([0, end], 2))
            return _path(left) + _path(right), q, form, _derive(left) + _derive(right)
        if form == "illicit_major":  # no 0 is a 1, 1 -> ... -> end  ⊬  anything about 0 vs end
            q = (rng.choice(["all", "no", "some", "some_not"]), 0, end)
            return [("no", 0, 1)] + _path(chain[1:]), q, form, _derive(chain[1:])
        if form == "illicit_minor":  # 0 -> ... -> k and 0 -> k+1 -> ... -> end  ⊬  every end is a k
            left, right = chain[:k + 1], [0] + chain[k + 1:]
            q = (rng.choice(["all", "some_not"]), *rng.sample([k, end], 2))
            return _path(left) + _path(right), q, form, _derive(left) + _derive(right)
        q = (rng.choice(["all", "some_not"]), end, 0)  # converse: every 0 … is an end ⊬ every end is a 0
        return _path(chain), q, form, _derive(chain)
    # contradiction: a chain and a premise that denies its conclusion; any question (so that the
    # question's terms sharing a premise is no cue)
    s, p = rng.sample(chain, 2)
    question = (rng.choice(["all", "no", "some", "some_not"]), s, p)
    if rng.random() < 0.5:
        denial = rng.choice(["no", "some_not"])
        return _path(chain) + [(denial, 0, end)], question, f"chain_vs_{denial}", _derive(chain)
    prem = _path(short) + [("no", h, end), ("some", 0, end)]
    return prem, question, "celarent_vs_some", _derive(short) + [("no", 0, end)]


def _parse_hops(hops: Any) -> tuple[int, int]:
    lo, _, hi = str(hops).partition("-")
    try:
        lo_i, hi_i = int(lo), int(hi or lo)
    except ValueError:
        lo_i = hi_i = -1
    if not 1 <= lo_i <= hi_i <= 6:
        raise UserError(f"hops: {hops!r} must be an integer or a range like 1-5, between 1 and 6")
    return lo_i, hi_i


class Syllogism(Task):
    """Categorical reasoning; options: hops (int or range "1-5"), vocab (nonce|real|mixed|any),
    content (any|agree|conflict: real-word items whose logic answer agrees/conflicts with the world),
    distractors (extra premises about unrelated terms), shuffle (premise order)."""

    name = "syllogism"
    description = "categorical syllogisms and multi-hop chains: yes / no / cannot tell / contradiction"
    answer_alphabet = "abcdefghijklmnopqrstuvwxyz "

    def __init__(self, hops: Any = 1, vocab: str = "any", content: str = "any", distractors: int = 1,
                 shuffle: bool = True, **options: Any) -> None:
        super().__init__(**options)
        self.hops_range = _parse_hops(hops)
        if vocab not in VOCABS:
            raise UserError(f"vocab: {vocab!r} — use one of {', '.join(VOCABS)}")
        if content not in ("any", "agree", "conflict"):
            raise UserError(f"content: {content!r} — use any, agree or conflict")
        if content != "any" and vocab == "nonce":
            raise UserError("content: agree/conflict needs real words — use vocab=real, mixed or any")
        if not 0 <= int(distractors) <= 4:
            raise UserError("distractors: must be between 0 and 4")
        self.hops, self.vocab, self.content = hops, vocab, content
        self.distractors, self.shuffle = int(distractors), bool(shuffle)

    def options(self) -> dict[str, Any]:
        return {"hops": self.hops, "vocab": self.vocab, "content": self.content,
                "distractors": self.distractors, "shuffle": self.shuffle}

    def _sample(self, rng: random.Random) -> Example:
        h = rng.randint(*self.hops_range)
        want = self.content if self.content != "any" else rng.choice(["agree", "conflict"])
        labels = ("yes", "no") if self.content != "any" else LABELS
        label = rng.choice(labels)
        premises, question, form, derived = _template(label, h, rng)
        n_slots = h + 2
        for _ in range(self.distractors):  # a fresh term linked to a random chain term
            q = rng.choice(["all", "no", "some"])
            pair = (n_slots, rng.randrange(h + 2))
            premises.append((q, *(pair if rng.random() < 0.5 or q != "all" else pair[::-1])))
            n_slots += 1
        vocab = self.vocab if self.vocab != "any" else rng.choice(
            ["real", "mixed"] if self.content != "any" else ["nonce", "real", "mixed"])
        words = self._words(vocab, question, label, want, n_slots, rng)
        if self.shuffle:
            rng.shuffle(premises)
        named = [(q, words[a], words[b]) for q, a, b in premises]
        q_named = (question[0], words[question[1]], words[question[2]])
        prompt = ". ".join(render_statement(*s) for s in named) + ". " + render_question(*q_named)
        world = world_truth(*q_named) if vocab != "nonce" else None
        if world is None:
            content = "nonce"
        elif label in ("yes", "no"):
            content = "agree" if world == (label == "yes") else "conflict"
        else:
            content = "neutral"
        cot = self._proof([(q, words[a], words[b]) for q, a, b in derived], q_named, named, label,
                          (words[0], words[h + 1]))
        meta = {"premises": [list(s) for s in named], "question": list(q_named), "label": label,
                "form": form, "hops": h, "vocab": vocab, "content": content,
                "world": None if world is None else ("yes" if world else "no")}
        return Example(prompt, label, cot, meta)

    def _words(self, vocab: str, question: Statement, label: str, want: str, n_slots: int,
               rng: random.Random) -> list[str]:
        """Words for slots: the question's two terms real (unless nonce) and chosen so that the
        world answer agrees/conflicts with the logic label as `want` says."""
        q, s, p = question
        words: list[str | None] = [None] * n_slots
        if vocab != "nonce":
            for _ in range(1000):
                ws, wp = rng.sample(REAL_WORDS, 2)
                if label not in ("yes", "no") or (world_truth(q, ws, wp) == (label == "yes")) == (
                        want == "agree"):
                    break
            words[s], words[p] = ws, wp
        pool = [w for w in (REAL_WORDS if vocab == "real" else NONCE_WORDS) if w not in words]
        fill = iter(rng.sample(pool, n_slots))
        return [w if w is not None else next(fill) for w in words]

    @staticmethod
    def _proof(derived: list, question: tuple, premises: list, label: str, ends: tuple) -> str:
        """Derived facts, then why they answer the question (PrOntoQA-style proof text)."""
        facts = [render_statement(*d) for d in derived]
        q_text = render_statement(*question)
        if label == "yes":
            if not facts or facts[-1] != q_text:
                facts.append(q_text)
        elif label == "no":
            facts.append(f"this denies that {q_text}")
        elif label == "cannot tell":
            facts.append(f"this does not settle whether {q_text}")
        else:  # the premise about the chain's two ends that is not a link denies the derived fact
            denial = next(p for p in premises if p[0] != "all" and (p[1], p[2]) == ends)
            facts.append(f"this contradicts {render_statement(*denial)}")
        return ". ".join(facts)

    def key(self, example: Example) -> str:
        prem = sorted(render_statement(*p) for p in example.meta["premises"])
        return "|".join(prem) + "|" + render_question(*example.meta["question"])

    def check(self, example: Example, predicted: str) -> tuple[bool, str]:
        got = predicted.strip().lower().rstrip(".")
        if got not in LABELS:
            return False, f"{got!r} is not one of {', '.join(LABELS)}"
        ok = got == example.answer
        return ok, "correct" if ok else f"expected {example.answer}, got {got}"

    def continuous_metrics(self, example: Example, completion: str) -> dict[str, float]:
        from emergelab.tasks.scoring import extract_answer

        predicted, _, _ = extract_answer(completion)
        return {"valid_label": float((predicted or "").strip().lower().rstrip(".") in LABELS)}

    @property
    def chance(self) -> float:
        return 0.5 if self.content != "any" else 1 / len(LABELS)
