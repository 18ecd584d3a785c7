"""SAT dataset configs (one per format) and TRAINING.md, with SAT's real key names and placements."""

from __future__ import annotations

from pathlib import Path

from sat_mir.fsutil import atomic_write_json, atomic_write_text

__all__ = ["dataset_config", "write_dataset_configs", "write_training_notes"]


def dataset_config(fmt: str, path: Path, module: Path, *, latent_crop_length: int | None = None) -> dict:
    """The SAT dataset config of one format.

    ``random_crop`` is off everywhere: items are already model-length chunks whose
    ``seconds_start`` we know, and a random crop would make it wrong (SAT does not
    update it).  ``drop_last`` is off so tiny datasets still yield batches.
    ``latent_crop_length`` sits at the top level, where SAT reads it (its docs
    show it inside ``datasets[]``, where it is ignored).
    """
    entry = {"id": "sat_mir", "path": str(path), "custom_metadata_module": str(module)}
    if fmt == "audio_dir":
        return {"dataset_type": "audio_dir", "datasets": [entry], "random_crop": False, "drop_last": False}
    if fmt == "pre_encoded":
        cfg = {"dataset_type": "pre_encoded", "datasets": [entry], "random_crop": False, "drop_last": False}
        if latent_crop_length:
            cfg["latent_crop_length"] = int(latent_crop_length)
        return cfg
    if fmt == "wds":
        return {"dataset_type": "wds", "datasets": [entry], "random_crop": False, "epoch_steps": 2000}
    if fmt == "wds_latents":
        cfg = {"dataset_type": "wds", "datasets": [entry], "random_crop": False, "pre_encoded": True,
               "epoch_steps": 2000}
        if latent_crop_length:
            cfg["latent_crop_length"] = int(latent_crop_length)
        return cfg
    raise ValueError(f"unknown format {fmt!r}")


def write_dataset_configs(folder: Path, configs: dict[str, dict]) -> dict[str, Path]:
    out = {}
    for fmt, cfg in configs.items():
        out[fmt] = folder / f"dataset_{fmt}.json"
        atomic_write_json(out[fmt], cfg)
    return out


def write_training_notes(
    folder: Path, *, dataset_configs: dict[str, Path], model_configs: dict[str, Path], numbers: list[dict],
    items: int, tracks: int, num_workers: int, sa3_dir: Path | None = None,
) -> Path:
    lines = [
        "# Training with stable-audio-tools on this dataset",
        "",
        f"Built by sat-mir from {tracks} tracks: {items} items. Prompts are drawn anew on every fetch by",
        "`custom_metadata/sat_mir_metadata.py` (standard library only; it reads `manifest.json` and looks",
        "each item up in `items.sqlite`, both beside it).",
        "",
        "`train.py` lives in a git checkout of stable-audio-tools (it is not in the pip wheel). From that",
        "checkout, with Stable Audio Open's weights (`model.safetensors` from stabilityai/stable-audio-open-1.0):",
        "",
    ]
    audio_model = model_configs.get("audio")
    latent_model = model_configs.get("pre_encoded")
    for fmt, path in dataset_configs.items():
        model = latent_model if fmt in ("pre_encoded", "wds_latents") else audio_model
        if model is None:
            continue
        lines += [
            f"## {fmt}",
            "",
            "```bash",
            "python train.py \\",
            f"  --dataset-config {path} \\",
            f"  --model-config {model} \\",
            "  --pretrained-ckpt-path /path/to/stable-audio-open-1.0/model.safetensors \\",
            f"  --name sat-mir-{fmt} --batch-size 4 --num-workers {num_workers} --save-dir checkpoints",
            "```",
            "",
        ]
    if numbers:
        lines += ["## Numeric conditioning", "",
                  "These `number` conditioners were added to the model config (cross-attention tokens):", "",
                  "| id | min_val | max_val | fill (corpus median) |", "|---|---|---|---|"]
        lines += [f"| `{n['key']}` | {n['min_val']} | {n['max_val']} | {n['fill']:.4g} |" for n in numbers]
        lines += ["", "`--pretrained-ckpt-path` loads matching weights only: these conditioners start from random",
                  "weights, the rest of the model from the checkpoint. Every `demo_cond` entry carries them.", ""]
    if sa3_dir is not None:
        lines += [
            "## Stable Audio 3 (LoRA)", "",
            f"`{sa3_dir}` holds each item's audio beside a `.txt` caption (the richest prompt of its material),",
            "the layout Stable Audio 3's scripts read. From a checkout of Stability-AI/stable-audio-3:", "",
            "```bash",
            f"uv run python scripts/train_lora.py --model medium-rf --data_dir {sa3_dir} --output_dir lora_out \\",
            "  --exclude seconds_total   # small datasets: leave the timing conditioner out of the LoRA",
            "# or encode once, then train on the latents (the captions travel in the .json files):",
            f"uv run python scripts/pre_encode_dataset.py --model same-l --data_dir {sa3_dir} --output_path sa3_latents",
            "uv run python scripts/train_lora.py --model medium-rf --data_dir "
            f"{sa3_dir} --encoded_dir sa3_latents --output_dir lora_out",
            "```", "",
            "`--duration` (default 30 s) crops or pads each clip; set it to the items' length to use all of them.", "",
        ]
    lines += [
        "## Notes",
        "",
        "- `model_config_pre_encoded.json` sets `training.pre_encoded: true`, which SAT needs for latent datasets.",
        "- stable-audio-tools 0.0.19 breaks `audio_dir`/`wds` diffusion training on its padding mask",
        "  (fixed on its main branch, PR #197); pre-encoded training works on 0.0.19.",
        "- `features.parquet` holds one row per item with every feature, for analysis in pandas.",
        "",
    ]
    path = folder / "TRAINING.md"
    atomic_write_text(path, "\n".join(lines))
    return path
