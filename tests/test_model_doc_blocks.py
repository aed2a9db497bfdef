"""Blocked document-masked attention: each document run alone is the oracle, across many query blocks."""

import torch

from emergelab.model import GPT, ModelConfig
from emergelab.model.gpt import DOC_BLOCK


def _rows(B=3, T=3 * DOC_BLOCK + 7, seed=0):
    """Rows of documents 3..70 tokens long whose boundaries differ per row and cross block edges."""
    g = torch.Generator().manual_seed(seed)
    doc_ids, docs = [], []
    for _ in range(B):
        ids, row_docs, d = [], [], 0
        while len(ids) < T:
            n = min(int(torch.randint(3, 71, (1,), generator=g)), T - len(ids))
            ids += [d] * n
            row_docs.append(n)
            d += 1
        doc_ids.append(ids)
        docs.append(row_docs)
    return torch.randint(0, 30, (B, T), generator=g), torch.tensor(doc_ids), docs


def test_blocked_document_attention_equals_documents_alone_in_logits_and_gradients():
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=30, n_layer=2, n_embd=32, n_head=4, n_kv_head=2, block_size=128)
    packed, alone = GPT(cfg), GPT(cfg)
    alone.load_state_dict(packed.state_dict())
    x, doc_ids, docs = _rows()
    w = torch.randn(*x.shape, 30, generator=torch.Generator().manual_seed(1))
    out = packed(x, doc_ids=doc_ids).logits
    (out * w).sum().backward()
    ref = []
    for b, lens in enumerate(docs):
        a = 0
        for n in lens:
            ref.append(alone(x[b:b + 1, a:a + n]).logits[0])
            (ref[-1] * w[b, a:a + n]).sum().backward()
            a += n
    torch.testing.assert_close(out.reshape(-1, 30), torch.cat(ref), atol=1e-5, rtol=0)
    for (name, p), q in zip(packed.named_parameters(), alone.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-4, rtol=1e-4, msg=name)


def test_attention_maps_under_document_masking_stay_inside_each_document():
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=30, n_layer=1, n_embd=16, n_head=2, block_size=128)).eval()
    x, doc_ids, _ = _rows(B=2)
    att = model(x, doc_ids=doc_ids, return_attention=True).attentions[0]  # (B, H, T, T)
    same_doc = doc_ids[:, None, :, None] == doc_ids[:, None, None, :]
    assert att.masked_select(~same_doc).abs().max() == 0
    torch.testing.assert_close(att.sum(-1), torch.ones(att.shape[:-1]))
