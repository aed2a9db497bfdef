"""generate() specification: HF `generate` and full (cache-free) forward passes are the oracles."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from emergelab.errors import UserError
from emergelab.model import GPT, ModelConfig, SamplingParams, generate
from emergelab.model.generate import MIN_TEMPERATURE, filter_logits, sample_next
from emergelab.model.hf import to_hf_llama


def model_(seed=0, **kw) -> GPT:
    torch.manual_seed(seed)
    cfg = dict(vocab_size=40, n_layer=2, n_embd=32, n_head=4, n_kv_head=2, block_size=64) | kw
    m = GPT(ModelConfig(**cfg))
    with torch.no_grad():  # larger weights than init so greedy paths are far from ties and vary by prompt
        for p in m.parameters():
            p.mul_(6.0)
    return m.eval()


PROMPTS = [[1, 5, 9, 2, 7], [3], [8, 8, 4, 30, 12, 19, 2, 2, 6, 11], [25, 17]]


def test_greedy_equals_hf_generate(tmp_path):
    model = model_()
    to_hf_llama(model, None, tmp_path)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ours = generate(model, PROMPTS, SamplingParams(max_new_tokens=12, temperature=0))
    for i, p in enumerate(PROMPTS):
        ref = hf.generate(torch.tensor([p]), max_new_tokens=12, do_sample=False, pad_token_id=0)[0, len(p):]
        assert ours[i].tokens == ref.tolist()
        assert ours[i].finish_reason == "length" and ours[i].prompt_index == i
    assert len({tuple(c.tokens) for c in ours}) > 1  # different prompts, different continuations


def test_batched_left_padded_generation_equals_one_prompt_at_a_time():
    model = model_(n_kv_head=1)
    params = SamplingParams(max_new_tokens=10, temperature=0)
    batched = generate(model, PROMPTS, params)
    for i, p in enumerate(PROMPTS):
        alone = generate(model, [p], params)[0]
        assert batched[i].tokens == alone.tokens
        assert batched[i].logprobs == pytest.approx(alone.logprobs, abs=1e-4)


def test_logprobs_are_temperature_one_log_softmax_of_a_full_forward():
    model = model_()
    out = generate(model, PROMPTS[:2], SamplingParams(max_new_tokens=8, temperature=0.7, top_k=5, seed=3))
    for c in out:
        seq = torch.tensor([PROMPTS[c.prompt_index] + c.tokens])
        logp = model(seq).logits[0].log_softmax(-1)
        n = len(PROMPTS[c.prompt_index])
        ref = [logp[n - 1 + t, tok].item() for t, tok in enumerate(c.tokens)]
        assert c.logprobs == pytest.approx(ref, abs=1e-5)


def test_seeded_sampling_is_reproducible_and_seed_dependent():
    model = model_()
    p = SamplingParams(max_new_tokens=15, temperature=1.0, seed=11, num_samples=3)
    a, b = generate(model, PROMPTS, p), generate(model, PROMPTS, p)
    assert [c.tokens for c in a] == [c.tokens for c in b]
    c = generate(model, PROMPTS, SamplingParams(max_new_tokens=15, temperature=1.0, seed=12, num_samples=3))
    assert [x.tokens for x in a] != [x.tokens for x in c]


def test_num_samples_are_prompt_major_and_share_one_prefill():
    model = model_()
    calls = []
    model.tok_emb.register_forward_hook(lambda mod, inp, out: calls.append(tuple(inp[0].shape)))
    out = generate(model, PROMPTS, SamplingParams(max_new_tokens=4, temperature=1.0, num_samples=5))
    assert [c.prompt_index for c in out] == [i for i in range(4) for _ in range(5)]
    assert calls[0] == (4, 10)  # the prefill ran once per prompt, not once per sample
    assert all(shape[0] == 20 for shape in calls[1:])  # then one token per row and step
    assert len({tuple(c.tokens) for c in out[:5]}) > 1  # the samples of one prompt differ


def test_top_k_and_top_p_keep_exactly_the_expected_support():
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3]])
    logits = probs.log()
    kept = lambda lg: set(torch.isfinite(lg[0]).nonzero().flatten().tolist())  # noqa: E731
    assert kept(filter_logits(logits, top_k=2)) == {1, 3}
    assert kept(filter_logits(logits, top_p=0.45)) == {1}
    assert kept(filter_logits(logits, top_p=0.7)) == {1, 3}
    assert kept(filter_logits(logits, top_p=0.9)) == {1, 3, 2}
    assert kept(filter_logits(logits, top_k=3, top_p=0.7)) == {1, 3}
    # sampling from the truncated distribution: support and renormalised frequencies (0.5/0.8, 0.3/0.8)
    gen = torch.Generator().manual_seed(0)
    p = SamplingParams(temperature=1.0, top_p=0.7)
    draws = sample_next(logits.expand(20000, 4), p, gen)
    assert set(draws.tolist()) == {1, 3}
    assert abs((draws == 1).float().mean().item() - 0.625) < 0.015


def test_temperature_sharpens_sampling():
    logits = torch.tensor([[0.0, 1.0]]).expand(20000, 2)
    gen = torch.Generator().manual_seed(0)
    hot = sample_next(logits, SamplingParams(temperature=1.0), gen).float().mean().item()
    cold = sample_next(logits, SamplingParams(temperature=0.25), gen).float().mean().item()
    # P(token 1) = sigmoid(1/T): 0.731 at T=1, 0.982 at T=0.25
    assert abs(hot - 0.731) < 0.015 and abs(cold - 0.982) < 0.005


def test_stop_token_ends_the_completion_and_is_included():
    model = model_()
    free = generate(model, PROMPTS, SamplingParams(max_new_tokens=12, temperature=0))
    stop = free[2].tokens[4]
    out = generate(model, PROMPTS, SamplingParams(max_new_tokens=12, temperature=0, stop_token_ids=(stop,)))
    for f, o in zip(free, out):
        if stop in f.tokens:
            cut = f.tokens.index(stop) + 1
            assert o.tokens == f.tokens[:cut] and o.finish_reason == "stop" and len(o.logprobs) == cut
        else:
            assert o.tokens == f.tokens and o.finish_reason == "length"


class LetterTokenizer:
    """The tokenizer contract generate() relies on: decode(ids) -> str (one letter per id)."""

    def decode(self, ids, skip_special=False):
        return "".join(chr(ord("a") + i % 26) for i in ids)


def test_stop_string_ends_the_completion_at_the_first_match():
    model, tok = model_(), LetterTokenizer()
    free = generate(model, PROMPTS, SamplingParams(max_new_tokens=40, temperature=0))
    text = tok.decode(free[0].tokens)
    stop = text[25:28]  # deep enough that only a tail window of the text is decoded when it appears
    out = generate(model, PROMPTS, SamplingParams(max_new_tokens=40, temperature=0, stop_strings=(stop,)),
                   tokenizer=tok)
    for f, o in zip(free, out):
        t = tok.decode(f.tokens)
        if stop in t:
            cut = t.index(stop) + len(stop)  # one letter per token
            assert o.tokens == f.tokens[:cut] and o.finish_reason == "stop"
        else:
            assert o.tokens == f.tokens and o.finish_reason == "length"
    assert out[0].finish_reason == "stop"


def test_user_errors():
    model = model_()
    with pytest.raises(UserError, match="block_size"):
        generate(model, [[1] * 60], SamplingParams(max_new_tokens=10))
    with pytest.raises(UserError, match="tokenizer"):
        generate(model, [[1]], SamplingParams(stop_strings=("x",)))
    with pytest.raises(UserError, match="prompt"):
        generate(model, [[]], SamplingParams())
    with pytest.raises(UserError, match="top_p"):
        generate(model, [[1]], SamplingParams(top_p=0.0))


def test_generate_restores_training_mode():
    model = model_().train()
    generate(model, [[1, 2]], SamplingParams(max_new_tokens=2))
    assert model.training


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_generate_on_cuda_matches_cpu_greedy():
    model = model_()
    cpu = generate(model, PROMPTS, SamplingParams(max_new_tokens=8, temperature=0))
    gpu = generate(model.cuda(), PROMPTS, SamplingParams(max_new_tokens=8, temperature=0))
    assert [c.tokens for c in cpu] == [c.tokens for c in gpu]
    sampled = generate(model, PROMPTS, SamplingParams(max_new_tokens=8, seed=1, num_samples=2))
    assert len(sampled) == 8


@pytest.mark.parametrize("temperature", [3e-300, float("nan"), float("inf"), -1.0])
def test_sampling_params_refuse_temperatures_that_break_the_sampler(temperature):
    # 3e-300 > 0 but logits / T overflows float32 into inf and the softmax into NaN
    with pytest.raises(UserError, match="temperature"):
        SamplingParams(temperature=temperature).validate()
    SamplingParams(temperature=0).validate()
    SamplingParams(temperature=MIN_TEMPERATURE).validate()
