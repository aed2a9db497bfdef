"""The web page in a real browser: Playwright driving Debian's Chromium (scripts/setup_browser_tests.sh).

The model is scripted so the page's behaviour can be checked exactly: after `<|assistant|>` it always
answers `<think>hmm</think><answer>4</answer><eos>` (a bigram table on top of a real GPT, whose
attention and hidden states the inspector still shows), one token per 60 ms so the stream is visible.
A screenshot is kept in test-artifacts/.
"""

from __future__ import annotations

import shutil
import string
import time
from pathlib import Path

import pytest
import torch

from emergelab.data.tokenizer import char_tokenizer
from emergelab.model import GPT, ModelConfig
from emergelab.serve.app import create_app
from emergelab.serve.chat import ChatFormat
from emergelab.serve.engine import Engine
from emergelab.serve.server import serve_in_thread

pytestmark = pytest.mark.slow
sync_api = pytest.importorskip("playwright.sync_api", reason="run scripts/setup_browser_tests.sh")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian chromium missing: run scripts/setup_browser_tests.sh", allow_module_level=True)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


class ScriptedGPT(GPT):
    """A GPT whose next-token logits come from a bigram table (other rows: the real model's logits)."""

    def __init__(self, cfg, table: dict[int, int]):
        super().__init__(cfg)
        self.table = table

    def forward(self, idx, *args, **kwargs):
        out = super().forward(idx, *args, **kwargs)
        if idx.shape[1] == 1:
            time.sleep(0.06)
        for prev, nxt in self.table.items():
            hit = idx == prev
            out.logits[hit] = -20.0
            out.logits[..., nxt][hit] = 20.0
        return out


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    tok = char_tokenizer(string.ascii_letters + string.digits + " .,?!+-*=")
    script = ["<|assistant|>", "<think>", "h", "m", "</think>", "<answer>", "4", "</answer>", "<eos>"]
    ids = [tok.token_to_id(t) for t in script]
    torch.manual_seed(0)
    model = ScriptedGPT(ModelConfig(vocab_size=tok.vocab_size, n_layer=2, n_embd=32, n_head=4, block_size=256),
                        dict(zip(ids, ids[1:]))).eval()
    run = tmp_path_factory.mktemp("run")
    (run / "report.html").write_text("<h1>report</h1>")
    (run / "plots").mkdir()
    (run / "plots" / "loss.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    engine = Engine(model, tok, (tok.eos_id,))
    with serve_in_thread(create_app(engine, ChatFormat(), "scripted", run_dir=run)) as url:
        yield url
    engine.close()


def test_page_streams_a_chat_answer_with_collapsible_thinking_and_shows_attention(page_url):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        try:
            page.goto(page_url)
            sync_api.expect(page.locator("#model-info")).to_contain_text("2 layers")
            assert page.locator("#links a").all_inner_texts() == ["report.html", "plots/loss.png"]

            # count separate DOM updates of the assistant's message: a streamed answer arrives in pieces
            page.evaluate("""() => { window.updates = 0;
                new MutationObserver(() => window.updates++).observe(document.getElementById('messages'),
                    {childList: true, subtree: true}); }""")
            page.fill("#prompt", "What is 2+2?")
            page.click("#send")
            answer = page.locator(".msg.assistant")
            sync_api.expect(answer).to_have_attribute("data-done", "1", timeout=30_000)
            assert page.evaluate("window.updates") >= 6
            think = answer.locator("details.think")
            assert think.evaluate("d => d.open") is False, "thinking collapses once </think> arrives"
            assert think.locator("div").text_content() == "hm"
            assert "4" in answer.locator(".body").inner_text()
            assert "finish: stop" in answer.locator(".meta").inner_text()
            think.locator("summary").click()
            assert think.evaluate("d => d.open") is True
            coloured = answer.locator(".body span[title^='p = ']")
            assert coloured.count() >= 3, "tokens carry their probability"
            page.screenshot(path=str(ARTIFACTS / "serve_chat.png"))

            page.click("#tab-inspect")
            heat = page.locator("#heatmap")
            sync_api.expect(heat).to_have_attribute("data-drawn", "1", timeout=30_000)
            text = page.input_value("#inspect-text")
            assert page.locator("#tokens span").count() == len(text)
            page.select_option("#layer", "1")
            sync_api.expect(heat).to_have_attribute("data-layer", "1", timeout=30_000)
            page.select_option("#head", "3")
            sync_api.expect(heat).to_have_attribute("data-head", "3")
            assert page.locator("#lens tr").count() == 1 + 3  # header + embeddings + 2 layers
            page.screenshot(path=str(ARTIFACTS / "serve_inspect.png"), full_page=True)
        finally:
            browser.close()


@pytest.fixture(scope="module")
def base_page_url(tmp_path_factory):
    """A base model as `emergelab pretrain` builds it: a digit corpus, a tokenizer covering printable ASCII."""
    tok = char_tokenizer("0123456789+=", printable=True)
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=tok.vocab_size, n_layer=2, n_embd=32, n_head=4, block_size=256)).eval()
    run = tmp_path_factory.mktemp("base")
    (run / "config.yaml").write_text("model: {n_layer: 2}\ndata: {corpus: digits, loss_on: answers}\n")
    engine = Engine(model, tok, (tok.eos_id,))
    with serve_in_thread(create_app(engine, ChatFormat(), "base", run_dir=run)) as url:
        yield url
    engine.close()


def test_base_model_page_completes_plain_text_and_inspects_the_default_sentence(base_page_url):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        try:
            page.goto(base_page_url)
            sync_api.expect(page.locator("#mode")).to_have_value("completion")  # a base model: no chat template
            page.fill("#max-tokens", "12")
            page.fill("#prompt", "What is 123+456?")
            page.click("#send")
            answer = page.locator(".msg.assistant")
            sync_api.expect(answer).to_have_attribute("data-done", "1", timeout=30_000)
            assert "error" not in (answer.get_attribute("class") or "")
            assert "12 tokens" in answer.locator(".meta").inner_text()
            assert answer.locator(".body span[title^='p = ']").count() >= 1

            page.click("#tab-inspect")  # the page's own default sentence, capitals and punctuation included
            sync_api.expect(page.locator("#heatmap")).to_have_attribute("data-drawn", "1", timeout=30_000)
            assert page.inner_text("#inspect-error") == ""
            assert page.locator("#tokens span").count() == len(page.input_value("#inspect-text"))
            assert page.locator("#lens tr").count() == 1 + 3  # header + embeddings + 2 layers
        finally:
            browser.close()


def test_context_panel_draws_the_shipped_pair_per_layer_and_shows_a_bad_word_error(base_page_url):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        try:
            page.goto(base_page_url)
            ARTIFACTS.mkdir(exist_ok=True)
            page.click("#tab-disambiguate")  # loads the shipped pairs and measures the first
            chart = page.locator("#dis-chart")
            sync_api.expect(chart).to_have_attribute("data-drawn", "1", timeout=30_000)
            assert page.inner_text("#dis-error") == ""
            assert chart.get_attribute("data-layers") == "3"  # embeddings + 2 layers
            assert chart.locator("polyline.series").count() == 2  # the word and its control
            assert chart.locator("circle").count() == 2 * 3
            assert page.locator("#dis-heads li").count() == 5
            assert page.input_value("#dis-word") == "bank"
            page.select_option("#dis-pair", "1")
            sync_api.expect(page.locator("#dis-heads")).to_contain_text('"zoologist"', timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "serve_context.png"), full_page=True)
            page.fill("#dis-word", "river")
            page.click("#dis-run")
            sync_api.expect(page.locator("#dis-error")).to_contain_text("must end with the word 'river'",
                                                                          timeout=30_000)
        finally:
            browser.close()
