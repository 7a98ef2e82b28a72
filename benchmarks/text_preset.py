"""A local preset with a tokenizer from a seed architecture, for measuring text-in graphs offline.

Seed presets built offline (WEIGHTS=random) have no vocabulary: the hub holds it. This
writes the seed architecture with random weights and a sentencepiece vocabulary trained
here on generated text (`--vocabulary` pieces, the model's embedding keeps its size), so
`make export PRESET=<dir> FORMATS=onnx_text` has a tokenizer to embed. Its ids are not the
pretrained vocabulary's: sizes and speeds are representative, outputs are not.

    python benchmarks/text_preset.py t5_1.1_small /tmp/t5_text_preset [--vocabulary 4000]
"""

from __future__ import annotations

import argparse
import io
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# Special pieces and tokenizer class per family, as each keras_hub tokenizer expects them.
from benchmarks.tiny import PIECES, TOKENIZERS  # noqa: E402


def corpus(lines: int = 20000, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    syllables = "ka to mi re su no ha ki lo pe da vu zen mar tis ol ex in an be co di fu ga".split()
    words = ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(20000)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(4, 30))) for _ in range(lines)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", help="a seed preset name (python -m export --list)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--vocabulary", type=int, default=4000)
    args = parser.parse_args()

    import keras
    import keras_hub
    import sentencepiece as spm

    from export.presets import seed_preset

    family, seed = seed_preset(args.preset)
    keras.utils.set_random_seed(0)
    backbone = getattr(keras_hub.models, family.backbone_class)(**seed.config)
    backbone.save_to_preset(str(args.out))
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()), model_writer=model, vocab_size=args.vocabulary,
        model_type="unigram", character_coverage=1.0, minloglevel=2, **PIECES[family.name],
    )
    getattr(keras_hub.models, TOKENIZERS[family.name])(proto=model.getvalue()).save_to_preset(str(args.out))
    print(f"wrote {args.out}: {args.preset} with random weights and a {args.vocabulary}-piece vocabulary")


if __name__ == "__main__":
    main()
