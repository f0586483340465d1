"""Writes a deterministic tiny random-weight Llama that real vLLM (CPU build) serves.

Run by `tools/make-tiny-model OUT` with the vLLM venv's python (tools/vllm-venv), so the
tokenizers/transformers/torch versions are the pinned ones: the output's bytes depend on
them, and the same lock gives the same bytes (checked by running it twice).

Shape (ENGINE.md): byte-level BPE, vocab 512, trained on the fixed text below; Llama with
hidden 128, 2 layers, 2 heads, 1 KV head, head_dim 64 (vLLM's CPU attention kernels reject
16), intermediate 256, bf16, seed 0. Under 1 MB.
"""

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

SEED = 0
VOCAB = 512
SPECIALS = ["<s>", "</s>", "<pad>"]

# The chat template the tokenizer carries: /v1/chat/completions needs one. Deliberately
# plain (no date, no tool blocks) so prompts are short and stable.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "<|{{ m['role'] }}|>\n{{ m['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

# Fixed training text: varied enough for 255 BPE merges beyond the byte alphabet.
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Confidential computing keeps data encrypted while it is being processed.",
    "A trusted execution environment proves what code it runs with a signed quote.",
    "The guest agent measures its configuration, the model and the engine command line.",
    "Verifiers compare the measured registers with the values pinned in their policy.",
    "Every completed request is written to an append-only ledger of signed receipts.",
    "Tokens are counted from the usage the inference engine reports for each request.",
    "Hello, how are you today? I am fine, thank you, and you?",
    "Once upon a time there was a small model that answered every question the same way.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 42 100 256 512 1024 2048 65536.",
    "user: What is the capital of France? assistant: Paris is the capital of France.",
    "system: You are a helpful assistant. Answer briefly and precisely.",
    "Streaming responses arrive as server-sent events, one chunk per token.",
    "The worker's wallet receives ninety-five percent of the price of each token.",
    "Attestation binds the TLS public key to the hardware report of the virtual machine.",
    "Rust, Python, and C are programming languages; JSON and TOML are data formats.",
]


def train_tokenizer(work):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Many repetitions in a fixed order: the counts, and so the merges, depend only on
    # the text above.
    tok.train_from_iterator(SENTENCES * 8, trainer=trainer, length=len(SENTENCES) * 8)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        model_max_length=512,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(vocab_size, tok):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
        dtype="bfloat16",
    )
    model = LlamaForCausalLM(config)
    return model.to(torch.bfloat16).eval()


def canonical_json(path):
    """Re-writes a JSON file with sorted keys: key order in some writers follows dict
    insertion order that can vary with library internals, and the manifest hashes bytes."""
    data = json.loads(path.read_text())
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def manifest(root):
    """`sha256  relative/path` lines sorted by path (sha256sum's format), and their digest."""
    # Sorted by the relative path's bytes, as the agent's model_digest.rs sorts (Path
    # ordering compares components, which differs for names like "a-b" vs "a/b").
    rels = sorted((p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()),
                  key=lambda r: r.encode())
    lines = []
    for rel in rels:
        lines.append(f"{hashlib.sha256((root / rel).read_bytes()).hexdigest()}  {rel}\n")
    text = "".join(lines)
    return text, hashlib.sha256(text.encode()).hexdigest()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_tiny_model.py OUT")
    out = Path(sys.argv[1]).absolute()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    tok = train_tokenizer(tmp)
    n = len(tok)
    if n != VOCAB:
        sys.exit(f"make-tiny-model: tokenizer has {n} tokens, wanted {VOCAB}; extend SENTENCES")
    model = build_model(n, tok)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    for p in tmp.glob("*.json"):
        canonical_json(p)
    for p in tmp.iterdir():
        p.chmod(0o644)  # safetensors writes 0600; the model disk is read by the engine's user

    text, digest = manifest(tmp)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    sys.stderr.write(text)
    print(f"manifest-sha256:{digest}")


if __name__ == "__main__":
    main()
