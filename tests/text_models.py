"""Tiny random-weight speech and text models, built offline and saved as the folders people download.

``tiny_whisper(folder)``: a ``WhisperForConditionalGeneration`` folder (config, safetensors weights,
``generation_config.json`` with its timestamp tokens, tokenizer and feature extractor files), English-only:
a byte-level BPE vocabulary of the 256 byte symbols (no merges), Whisper's special tokens and its 1501
timestamp tokens ``<|0.00|>`` .. ``<|30.00|>``, in that order as in the real files. ``tiny_bert(folder)``:
a ``BertModel`` folder with a word-piece tokenizer made from a vocab file. Used by the tests and by
``benchmarks/bench_text.py`` (``whisper-tiny`` sizes give the compute of the real model, not its words).
"""

from __future__ import annotations

from pathlib import Path

import torch
import transformers as T

SPECIALS = ("<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|translate|>", "<|startoflm|>",
            "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>")
WHISPER_TINY = {"d_model": 384, "layers": 4, "heads": 6, "ffn": 1536}  # openai/whisper-tiny's shape


def byte_symbols() -> list[str]:
    """GPT-2's byte -> printable-character table (the symbols of a byte-level BPE vocabulary)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def whisper_tokenizer() -> T.WhisperTokenizer:
    from tokenizers import AddedToken

    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    vocab = {s: i for i, s in enumerate(byte_symbols() + list(SPECIALS) + stamps)}
    tok = T.WhisperTokenizer(vocab=vocab, merges=[])
    tok.add_special_tokens({"additional_special_tokens": [AddedToken(s, normalized=False, special=True) for s in SPECIALS]})
    tok.add_tokens([AddedToken(s, normalized=False, special=False) for s in stamps])
    return tok


def tiny_whisper(folder: Path, d_model: int = 32, layers: int = 2, heads: int = 2, ffn: int = 64, seed: int = 0) -> Path:
    tok = whisper_tokenizer()
    ids = {s: tok.convert_tokens_to_ids(s) for s in SPECIALS}
    torch.manual_seed(seed)
    eot = ids["<|endoftext|>"]
    cfg = T.WhisperConfig(vocab_size=len(tok), d_model=d_model, encoder_layers=layers, decoder_layers=layers,
                          encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=ffn,
                          decoder_ffn_dim=ffn, num_mel_bins=80, max_target_positions=448, pad_token_id=eot,
                          bos_token_id=eot, eos_token_id=eot, decoder_start_token_id=ids["<|startoftranscript|>"])
    model = T.WhisperForConditionalGeneration(cfg).eval()
    g = model.generation_config  # what a real English-only checkpoint's generation_config.json holds
    g.no_timestamps_token_id, g.is_multilingual, g.max_initial_timestamp_index = ids["<|notimestamps|>"], False, 50
    g.forced_decoder_ids, g.suppress_tokens, g.begin_suppress_tokens = None, [], [eot]
    g.max_length, g._from_model_config = 448, False
    model.save_pretrained(folder)
    T.WhisperProcessor(feature_extractor=T.WhisperFeatureExtractor(feature_size=80), tokenizer=tok).save_pretrained(folder)
    return folder


def tiny_bert(folder: Path, hidden: int = 32, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    words = "hello there yes no maybe i am not sure it is fine good bad the a to and of".split()
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tok = T.BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    torch.manual_seed(seed)
    T.BertModel(T.BertConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=2 * hidden, max_position_embeddings=64)).eval().save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
