"""Hugging Face checkpoints in: `PRESET=hf://<org>/<name>` or a local checkpoint directory.

    checkpoint.py  config.json and the weight files (safetensors, shards, pytorch_model.bin
                   where torch is installed), read one tensor at a time
    tokenizer.py   the sentencepiece file as keras_hub's tokenizer, checked against vocab_size
    load.py        checkpoint -> LoadedModel: the family's converter, header checks, streaming
    hub.py         hf:// handles: download through huggingface_hub (keras_hub-format repos are
                   left to keras_hub's from_preset)
    compare.py     the converted model against transformers', when transformers + torch exist
    ports.py       `Port`: one checkpoint tensor into one Keras variable

A family converts checkpoints by naming them on its FamilySpec (`huggingface_architectures`:
architecture -> task kind or None for the backbone; `huggingface_converter`: its module,
e.g. export/families/t5/huggingface.py). That module provides:

    TOKENIZER_FILES                     sentencepiece file names, in order of preference
    backbone_config(config) -> dict     keras_hub backbone arguments from config.json; raises
                                        UnsupportedCheckpointError naming what keras_hub lacks
    build_task(kind, backbone, tokenizer, config) -> keras_hub task model
    ports(model, checkpoint) -> [Port]  every Keras variable's tensor, with its expected shape
    ignored(checkpoint) -> (regex, ...) checkpoint tensors deliberately left unread (tied copies)
    notes(config) -> dict               conversion choices recorded in the manifest
    transformers_outputs / keras_outputs / real_positions   the comparison with transformers
"""
