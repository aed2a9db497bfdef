"""The config loader and overrides: any input is a valid config or one UserError naming the field (issue 13).

Property-based (hypothesis): arbitrary override strings and arbitrary YAML files never raise anything but
UserError; the named regressions (bad YAML in an override, beta1=5, grad_clip=.nan, non-UTF-8 or directory
configs) are checked by hand.
"""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emergelab.config import load_pretrain_config, parse_overrides
from emergelab.errors import UserError

BASE = [f"data.text_files=[{Path(__file__).as_posix()}]", "train.max_steps=3"]  # a complete config
KEYS = ["model.n_layer", "model.n_embd", "model.n_head", "model.block_size", "model.rope_theta", "train.lr",
        "train.beta1", "train.beta2", "train.grad_clip", "train.batch_size", "train.seq_len", "train.max_steps",
        "train.warmup_steps", "train.min_lr_ratio", "train.device", "train.dtype", "data.tokenizer",
        "data.val_fraction", "size", "model", "train", "nope.key", "model.nope", ""]
VALUES = st.one_of(
    st.sampled_from(["[1", "{a", "]", ".nan", ".inf", "-.inf", "1e999", "-1", "0", "5", "0.5", "true", "null", "~",
                     "'x", "!!python/object:os.system", "[1, 2]", "{a: 1}", "2020-01-01", "0x10", "1_000",
                     "&a [*a]", "*unknown", "|", "- a", "? x", "%YAML 1.1", "\t", "\x00", "\ud800", "é", "9" * 400]),
    st.text(max_size=20),
    st.integers().map(str),
    st.floats().map(repr),
)


def loads_or_user_error(overrides: list[str]) -> None:
    try:
        load_pretrain_config(None, overrides)
    except UserError as e:
        assert str(e) and "\n" not in str(e).strip().split("\n")[0]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=4))
def test_any_overrides_give_a_config_or_a_user_error(pairs):
    loads_or_user_error(BASE + [f"{k}={v}" for k, v in pairs])


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.printable + "=.[]{}:é\x00", max_size=30))
def test_any_override_string_gives_a_config_or_a_user_error(text):
    loads_or_user_error(BASE + [text])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_config_file_gives_a_config_or_a_user_error(tmp_path, content):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    try:
        load_pretrain_config(path, BASE)
    except UserError:
        pass


@pytest.mark.parametrize("override, words", [
    ("train.max_steps=[1", "not valid YAML"),
    ("train.beta1=5", "train.beta1"),
    ("train.beta2=1", "train.beta2"),
    ("train.grad_clip=.nan", "train.grad_clip"),
    ("train.lr=.inf", "train.lr"),
    ("model.rope_theta=-.inf", "model.rope_theta"),
])
def test_named_bad_overrides_are_one_user_error_naming_the_field(override, words):
    with pytest.raises(UserError, match=words.replace(".", r"\.")):
        load_pretrain_config(None, BASE + [override])


def test_bad_yaml_in_an_override_names_the_override():
    with pytest.raises(UserError, match=r"train\.max_steps=\[1"):
        parse_overrides(["train.max_steps=[1"])


def test_a_non_utf8_or_directory_config_is_a_user_error(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("train:\n  device: caf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match="UTF-8"):
        load_pretrain_config(bad)
    with pytest.raises(UserError, match="directory"):
        load_pretrain_config(tmp_path)
