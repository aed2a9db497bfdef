"""Document-masked attention on packed rows (train.doc_mask): oracle = each document run alone."""

from __future__ import annotations

import numpy as np
import torch

from emergelab.data.tokens import BatchSampler, doc_ids_of
from emergelab.model.gpt import GPT, ModelConfig
from emergelab.train.sft import make_batch_fn, pack

EOS = 0


def _model() -> GPT:
    torch.manual_seed(0)
    return GPT(ModelConfig(vocab_size=20, n_layer=2, n_embd=32, n_head=4, n_kv_head=2, block_size=64)).eval()


def test_packed_row_computes_what_each_document_computes_alone():
    model = _model()
    docs = [torch.tensor([EOS, 5, 6, 7, 8]), torch.tensor([EOS, 9, 3, 4]), torch.tensor([EOS, 11, 12])]
    row = torch.cat(docs)[None]
    packed = model(row, doc_ids=doc_ids_of(row, EOS)).logits[0]
    alone = torch.cat([model(d[None]).logits[0] for d in docs])
    assert torch.allclose(packed, alone, atol=1e-5)
    # without the mask the later documents see the earlier ones (the check above can fail)
    assert not torch.allclose(model(row).logits[0], alone, atol=1e-3)


def test_gradients_of_a_packed_row_equal_the_sum_over_documents():
    docs = [torch.tensor([EOS, 5, 6, 7, 8, 2]), torch.tensor([EOS, 9, 3, 4])]
    row = torch.cat(docs)[None]
    targets = torch.cat([torch.cat([d[1:], torch.tensor([-100])]) for d in docs])[None]
    packed_model, alone_model = _model(), _model()
    n = int((targets != -100).sum())
    (packed_model(row, targets=targets, doc_ids=doc_ids_of(row, EOS)).loss * n).backward()
    for d in docs:
        t = torch.cat([d[1:], torch.tensor([-100])])[None]
        (alone_model(d[None], targets=t).loss * (len(d) - 1)).backward()
    for (name, p), q in zip(packed_model.named_parameters(), alone_model.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-5), name


def test_sampler_gives_doc_ids_and_does_not_score_a_cut_leading_fragment():
    # documents "EOS 1 2 3 4" repeated: every window starts inside a document or at its EOS
    tokens = np.tile(np.array([EOS, 1, 2, 3, 4], dtype=np.uint16), 40)
    x, y, doc = BatchSampler(tokens, 12, 8, seed=1, doc_sep=EOS).batch(0)
    assert torch.equal(doc, (x == EOS).cumsum(1))
    for row_x, row_y, row_doc in zip(x, y, doc):
        starts_at_doc = row_x[0] == EOS
        for t in range(12):
            fragment = row_doc[t] == 0 and not starts_at_doc
            assert (row_y[t] == -100) == bool(fragment), (row_x.tolist(), row_y.tolist())


def test_window_inside_one_long_document_is_scored_everywhere():
    tokens = np.arange(1, 200, dtype=np.uint16)  # no separator at all
    x, y, doc = BatchSampler(tokens, 16, 4, doc_sep=EOS).batch(3)
    assert (doc == 0).all() and (y != -100).all()


def test_sft_batches_carry_doc_ids_so_conversations_do_not_see_each_other():
    examples = [([EOS, 3, 4, 5], [-100, -100, 5, EOS]), ([EOS, 6, 7], [-100, 7, -100])]
    x, y, _ = pack(examples, seq_len=10, pad_id=1)
    bx, by, bdoc = make_batch_fn(x, y, batch_size=1, grad_accum=1, world_size=1, seed=0, doc_sep=EOS)(0, 0, 0)
    model = _model()
    logits = model(bx, doc_ids=bdoc).logits[0]
    edited = bx.clone()
    edited[0, 1] = 9  # change the first conversation; the second one's logits must not move
    logits_edited = model(edited, doc_ids=bdoc).logits[0]
    assert torch.allclose(logits[4:7], logits_edited[4:7], atol=1e-6)
    assert not torch.allclose(logits[1:4], logits_edited[1:4], atol=1e-4)
