"""Answer extraction and string metrics shared by every task's verifier.

`extract_answer` accepts `<think>…</think><answer>…</answer>`, `<answer>…</answer>`,
`<think>…</think> answer` and a plain answer, and reports malformed text (unclosed tags, an empty
answer, stray tags) instead of raising.
"""

from __future__ import annotations

from emergelab.data.chat import ANSWER_CLOSE, ANSWER_OPEN, REASONING_TAGS, THINK_CLOSE, THINK_OPEN, cut_at_stop


def extract_answer(completion: str) -> tuple[str | None, str, str]:
    """(answer or None, format, reason). Format is "cot", "direct", "plain" or "malformed"."""
    text = cut_at_stop(completion).strip()
    if not text:
        return None, "malformed", "empty completion"
    fmt = "plain"
    if THINK_OPEN in text or THINK_CLOSE in text:
        if THINK_CLOSE not in text:
            return None, "malformed", "unclosed <think>"
        fmt = "cot"
        text = text[text.rfind(THINK_CLOSE) + len(THINK_CLOSE):].strip()
    if ANSWER_OPEN in text:
        i = text.find(ANSWER_OPEN) + len(ANSWER_OPEN)
        j = text.find(ANSWER_CLOSE, i)
        if j == -1:
            return None, "malformed", "unclosed <answer>"
        text = text[i:j].strip()
        fmt = "cot" if fmt == "cot" else "direct"
    elif ANSWER_CLOSE in text:  # the caller dropped a forced "<answer>" prefix
        text = text[: text.find(ANSWER_CLOSE)].strip()
        fmt = "cot" if fmt == "cot" else "direct"
    if any(t in text for t in REASONING_TAGS):
        return None, "malformed", "stray tag inside the answer"
    if not text:
        return None, "malformed", "empty answer"
    return text, fmt, "ok"


def char_accuracy(predicted: str, reference: str, align: str = "left") -> float:
    """Share of reference positions the prediction gets right. `align="right"` compares from the
    last character (units digit first for plain numbers)."""
    if not reference:
        return float(predicted == reference)
    if align == "right":
        predicted, reference = predicted[::-1], reference[::-1]
    return sum(p == r for p, r in zip(predicted, reference)) / len(reference)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions cost 1)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def normalized_edit_distance(predicted: str, reference: str) -> float:
    """Edit distance divided by the reference length (0 = identical)."""
    return edit_distance(predicted, reference) / max(len(reference), 1)
