"""SFT data: chat rendering, assistant-only targets, packing and the batch order."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from emergelab.data.chat import encode_pair
from emergelab.data.tokenizer import char_tokenizer
from emergelab.model import GPT, ModelConfig
from emergelab.train.sft import make_batch_fn, pack

TOK = char_tokenizer("0123456789+=-;c ")
PAIRS = [("12+34=", "<think>2+4=6 c0;1+3=4 c0</think><answer>46</answer>"),
         ("5+5=", "<answer>10</answer>"),
         ("99+1=", "<think>9+1=0 c1;9+0+1=0 c1</think><answer>100</answer>")]


def test_targets_are_exactly_the_response_and_closing_eos():
    for template in ("chat", "plain"):
        for prompt, response in PAIRS:
            ids, tgt = encode_pair(TOK, prompt, response, template)
            supervised = [t for t in tgt if t != -100]
            assert TOK.decode(supervised) == response + "<eos>"
            # the supervised tokens are the ones that follow each position in the input
            assert all(t == -100 or t == ids[i + 1] for i, t in enumerate(tgt[:-1]))
            text = TOK.decode(ids)
            want_head = f"<|user|>{prompt}<|assistant|>" if template == "chat" else prompt
            assert text == "<eos>" + want_head + response + "<eos>"


def test_loss_gets_no_gradient_from_non_assistant_positions():
    x, y, _ = pack([encode_pair(TOK, p, r, "chat") for p, r in PAIRS], seq_len=96, pad_id=TOK.pad_id)
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=TOK.vocab_size, n_layer=1, n_embd=32, n_head=2, block_size=96))
    logits = model(x).logits.detach().requires_grad_(True)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), ignore_index=-100)
    loss.backward()
    grad_norm_per_pos = logits.grad.abs().sum(-1)
    assert torch.all(grad_norm_per_pos[y == -100] == 0)
    assert torch.all(grad_norm_per_pos[y != -100] > 0)
    # the model's own loss equals the mean CE over assistant tokens, recomputed by an explicit loop
    lp = logits.detach().log_softmax(-1)
    terms = [-float(lp[b, t, y[b, t]]) for b in range(y.shape[0]) for t in range(y.shape[1]) if y[b, t] != -100]
    assert abs(model(x, targets=y).loss.item() - sum(terms) / len(terms)) < 1e-5
    # editing the prompt text of the LAST conversation cannot change the loss of the earlier ones
    edited = [*PAIRS[:2], ("11+88=", PAIRS[2][1])]
    x2, y2, _ = pack([encode_pair(TOK, p, r, "chat") for p, r in edited], seq_len=96, pad_id=TOK.pad_id)
    first_two = len(encode_pair(TOK, *PAIRS[0], "chat")[0]) + len(encode_pair(TOK, *PAIRS[1], "chat")[0])
    l1 = F.cross_entropy(model(x).logits[0, :first_two], y[0, :first_two], ignore_index=-100)
    l2 = F.cross_entropy(model(x2).logits[0, :first_two], y2[0, :first_two], ignore_index=-100)
    assert torch.equal(l1, l2)


def test_packing_keeps_conversations_whole_and_every_assistant_token():
    examples = [encode_pair(TOK, p, r, "chat") for p, r in PAIRS * 5]
    x, y, truncated = pack(examples, seq_len=64, pad_id=TOK.pad_id)
    assert truncated == 0 and x.shape[1] == 64
    assert int((y != -100).sum()) == sum(sum(t != -100 for t in tgt) for _, tgt in examples)
    # every row starts at a conversation boundary (<eos> then <|user|>)
    assert torch.all(x[:, 0] == TOK.eos_id) and torch.all(x[:, 1] == TOK.token_to_id("<|user|>"))
    assert x.shape[0] < len(examples)  # several conversations share a row


def test_batch_order_is_seeded_and_visits_every_row_once_per_epoch():
    x = torch.arange(10)[:, None].repeat(1, 4)
    fn = make_batch_fn(x, x, batch_size=5, grad_accum=1, world_size=1, seed=3)
    epoch = torch.cat([fn(0, 0, 0)[0][:, 0], fn(1, 0, 0)[0][:, 0]])
    assert sorted(epoch.tolist()) == list(range(10))
    assert torch.equal(fn(1, 0, 0)[0], make_batch_fn(x, x, 5, 1, 1, seed=3)(1, 0, 0)[0])
