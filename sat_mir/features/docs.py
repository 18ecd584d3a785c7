"""The features table (Markdown), generated from the same specs the extractors declare."""

from __future__ import annotations

from sat_mir.audio.content import PITCHED, RHYTHMIC, SOUND_DB
from sat_mir.features.registry import REGISTRY

__all__ = ["features_markdown"]


def features_markdown() -> str:
    import sat_mir.features  # noqa: F401  - registers every extractor

    lines = [
        "# Features",
        "",
        "Generated from the extractors' output specs by `python tools/gen_features_doc.py`; do not edit by hand.",
        "`{stem}` stands for each stem the track has (drums, bass, other, vocals).",
        "A value outside its range is kept and flagged in the sidecar's provenance, never clamped.",
        "Each section names the module that computes its keys.  *On a crop*: `measured` values are",
        "measured again on each crop; `inherited` ones hold for the whole track (the spec's",
        "`holds=\"track\"`) and are copied into each crop's sidecar.",
        "",
    ]
    for name in sorted(REGISTRY):
        cls = REGISTRY[name]
        doc = (cls.__doc__ or "").strip().splitlines()
        module_doc = (__import__(cls.__module__, fromlist=["_"]).__doc__ or "").strip().splitlines()
        summary = (doc or module_doc or [""])[0]
        lines += [f"## `{name}` (version {cls.version}; signals: {', '.join(cls.signals)}; {cls.device})", "",
                  f"Computed by `{cls.__module__}`.", ""]
        if summary:
            lines += [summary, ""]
        needs = _needs_text(cls.needs)
        if needs:
            lines += [f"Needs {needs}; below that every key is absent, with the reason.", ""]
        lines += ["| key | unit | range | on a crop | meaning |", "|---|---|---|---|---|"]
        for spec in cls.outputs:
            rng = "–" if spec.range is None else f"{spec.range[0]} … {spec.range[1]}"
            crop = "inherited" if spec.holds == "track" else "measured"
            lines.append(f"| `{spec.key}` | {spec.unit} | {rng} | {crop} | {spec.description} |")
        lines.append("")
    return "\n".join(lines + _crop_section())


def _crop_section() -> list[str]:
    from sat_mir.store.dataset import CROP_SECTION_FEATURES, INHERITED_RENAMED

    return [
        "## Values of a crop",
        "",
        "Computed by `sat_mir.crops.cut` from the track's beat grid when the crop is cut (the crop's",
        "`crop` section), or copied from the track under another name (`inherited`).  A crop's own",
        "measured values win over these (`sat_mir.store.item_values`).",
        "",
        "| key | meaning |",
        "|---|---|",
        *[f"| `{k}` | {meaning} |" for k, meaning in CROP_SECTION_FEATURES.items()],
        *[f"| `{new}` | the track's `{old}` |" for old, new in INHERITED_RENAMED.items()],
        "",
    ]


def _needs_text(needs) -> str:
    parts = []
    if needs.min_seconds:
        parts.append(f"a mix of at least {needs.min_seconds:g} s")
    if needs.min_sound_s:
        parts.append(f"{needs.min_sound_s:g} s of sound above {SOUND_DB:g} dBFS")
    if needs.pitched:
        parts.append(f"pitched content (tonality >= {PITCHED:g})")
    if needs.rhythmic:
        parts.append(f"a pulse (pulse clarity >= {RHYTHMIC:g})")
    if needs.music:
        parts.append("pitched content or a pulse (not noise)")
    return ", ".join(parts)
