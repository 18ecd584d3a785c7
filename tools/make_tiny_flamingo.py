"""Write a tiny randomly initialised Music Flamingo checkpoint folder, for tests and benchmarks.

    .venv/bin/python tools/make_tiny_flamingo.py MODELS_DIR [--arch musicflamingo|audioflamingo3]
                                                 [--folder NAME] [--seed 0]

The folder holds what a Hugging Face checkpoint of the real model holds, written with
``save_pretrained`` and loaded through the same ``from_pretrained`` calls:

- ``config.json`` / ``generation_config.json`` and sharded ``model-0000k-of-0000n.safetensors`` with
  ``model.safetensors.index.json`` (the real 8 B checkpoints are sharded too), of the real class:
  ``MusicFlamingoForConditionalGeneration`` (``--arch musicflamingo``, the layout of
  ``nvidia/music-flamingo-2601-hf``) or ``AudioFlamingo3ForConditionalGeneration``
  (``--arch audioflamingo3``, the older ``nvidia/music-flamingo-hf``): an AF-Whisper encoder
  (128 mel bins, 1500 positions, i.e. the real 30 s window), the projector and a Qwen2 decoder,
  each shrunk to one or two layers of width 16-40 (about 100 k parameters);
- the processor (``MusicFlamingoProcessor`` / ``AudioFlamingo3Processor``): a byte-level BPE
  tokenizer trained here with the ``tokenizers`` library on a few music sentences, holding the
  special tokens the processor and chat template need (``<|im_start|>``, ``<|im_end|>``,
  ``<|endoftext|>``, ``<sound>``, ``<|sound_bos|>``, ``<|sound_eos|>``), saved as a
  ``Qwen2Tokenizer`` like the real one; a ``WhisperFeatureExtractor`` with its default settings
  except 128 mel bins (what AF-Whisper takes); and a ChatML chat template that, like the real
  one, puts the audio placeholder before the user's text after a system turn.

Nothing is downloaded.  The same arguments give the same weights (drawn with ``seed`` in a
forked RNG) and the same tokenizer.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["ARCHES", "SPECIAL_TOKENS", "make_tiny_flamingo"]

ARCHES = ("musicflamingo", "audioflamingo3")
# <|endoftext|> pads, <|im_end|> ends a turn (the generation EOS), <sound> is the audio placeholder
# the processor expands to one token per audio embedding, wrapped in <|sound_bos|>/<|sound_eos|>
# by MusicFlamingoProcessor.
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<sound>", "<|sound_bos|>", "<|sound_eos|>")

_SYSTEM = "You are a tiny stand-in for Music Flamingo with random weights; your words mean nothing."

# ChatML as Qwen2.5 and the released checkpoints render it: a default system turn, then every
# audio placeholder of a user turn before its text.
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' -%}"
    "{{ '<|im_start|>system\\n" + _SYSTEM + "<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}"
    "{%- for part in message['content'] if part['type'] == 'audio' -%}{{ '<sound>' }}{%- endfor -%}"
    "{%- for part in message['content'] if part['type'] == 'text' -%}{{ part['text'] }}{%- endfor -%}"
    "{%- endif -%}"
    "{{ '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

_CORPUS = (
    "This track is an uplifting electronic piece at 128 BPM in A minor with a driving four on the floor kick.",
    "Warm analog bass, bright plucked synth arpeggios, airy pads and crisp hi-hats; wide stereo image.",
    "The structure moves from a sparse intro through a build-up and drop to a calm outro.",
    "Genre: deep house, techno, trance, ambient, jazz, rock, pop, hip hop, folk, classical.",
    "Mood: dreamy, dark, euphoric, melancholic, energetic, relaxed. Tempo, key, chords, dynamics.",
    "Vocals, piano, guitar, drums, strings, brass, reverb, delay, compression, sidechain, saturation.",
)


def make_tiny_flamingo(models_dir: Path, *, arch: str = "musicflamingo", folder: str | None = None,
                       seed: int = 0) -> Path:
    """Write the tiny checkpoint into ``<models_dir>/<folder>`` and return that folder.

    Parameters
    ----------
    models_dir : the models folder (created if missing).
    arch : "musicflamingo" (``MusicFlamingoForConditionalGeneration``) or "audioflamingo3"
        (``AudioFlamingo3ForConditionalGeneration``).
    folder : sub-folder name; default the real model's folder name for ``arch``
        ("music-flamingo-2601-hf" or "music-flamingo-hf"), so ``locate`` finds it.
    seed : weights are drawn with this seed inside a forked RNG (the caller's torch RNG is untouched).

    Raises
    ------
    ValueError
        ``arch`` is not one of :data:`ARCHES`.
    """
    import torch

    if arch not in ARCHES:
        raise ValueError(f"arch must be one of {ARCHES}, got {arch!r}")
    folder = folder or ("music-flamingo-2601-hf" if arch == "musicflamingo" else "music-flamingo-hf")
    out = Path(models_dir) / folder
    out.mkdir(parents=True, exist_ok=True)

    processor = _processor(arch)
    tok = processor.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = _config(arch, vocab_size=len(tok), ids=ids)
    model_cls = _classes(arch)[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.do_sample = False
    # sharded like the released checkpoints, so the index file is part of the tiny layout too
    model.save_pretrained(out, max_shard_size="200KB")
    processor.save_pretrained(out)
    return out


def _classes(arch: str):
    import transformers as tf

    if arch == "musicflamingo":
        return tf.MusicFlamingoForConditionalGeneration, tf.MusicFlamingoConfig, tf.MusicFlamingoProcessor
    return tf.AudioFlamingo3ForConditionalGeneration, tf.AudioFlamingo3Config, tf.AudioFlamingo3Processor


def _tokenizer():
    """A byte-level BPE (Qwen2's pre-tokenisation) trained on :data:`_CORPUS`, as a Qwen2Tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    bpe.train_from_iterator(_CORPUS, trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tok = Qwen2Tokenizer(vocab=model["vocab"], merges=merges, unk_token="<|endoftext|>",
                         eos_token="<|im_end|>", pad_token="<|endoftext|>",
                         extra_special_tokens=list(SPECIAL_TOKENS[1:]))
    missing = [t for t in SPECIAL_TOKENS if tok.convert_tokens_to_ids(t) in (None, tok.unk_token_id)
               and t != "<|endoftext|>"]
    if missing:  # a tokenizer without them would make the processor count audio tokens wrongly
        raise RuntimeError(f"tiny tokenizer lacks special tokens {missing}")
    return tok


def _processor(arch: str):
    from transformers import WhisperFeatureExtractor

    # AF-Whisper is Whisper-large-v3's encoder: 128 mel bins; everything else is Whisper's default
    # (16 kHz, 30 s windows, n_fft 400, hop 160).
    features = WhisperFeatureExtractor(feature_size=128)
    return _classes(arch)[2](features, _tokenizer(), chat_template=CHAT_TEMPLATE)


def _config(arch: str, *, vocab_size: int, ids: dict[str, int]):
    from transformers import AudioFlamingo3EncoderConfig, Qwen2Config

    audio = AudioFlamingo3EncoderConfig(num_mel_bins=128, num_hidden_layers=1, num_attention_heads=2,
                                        intermediate_size=32, hidden_size=40, max_source_positions=1500)
    text = Qwen2Config(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                       eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                       bos_token_id=None, tie_word_embeddings=False)
    config_cls = _classes(arch)[1]
    kwargs = {"audio_config": audio, "text_config": text, "audio_token_id": ids["<sound>"]}
    if arch == "musicflamingo":
        kwargs.update(audio_bos_token_id=ids["<|sound_bos|>"], audio_eos_token_id=ids["<|sound_eos|>"])
    return config_cls(**kwargs)


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("models_dir", type=Path)
    ap.add_argument("--arch", choices=ARCHES, default="musicflamingo")
    ap.add_argument("--folder", default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = make_tiny_flamingo(args.models_dir, arch=args.arch, folder=args.folder, seed=args.seed)
    for p in sorted(out.iterdir()):
        print(f"{p} ({p.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
