"""Write docs/features.md from the extractors' output specs.

    .venv/bin/python tools/gen_features_doc.py
"""

from pathlib import Path

from sat_mir.features.docs import features_markdown

if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "docs" / "features.md"
    out.write_text(features_markdown())
    print(out)
