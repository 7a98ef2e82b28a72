"""One weights file for all of an artifact's OpenVINO IR graphs, each constant stored once.

`ov.save_model` writes each graph's constants to its own `.bin`, so the weights
two graphs share (T5's token embedding in the encoder and the decoding step; every
weight again in the opt-in backbone) are stored twice. An IR names each constant by
offset and size into its weights file:

    encoder.xml       <layer type="Const"><data offset=".." size=".."/>  ─┐
    decoder_step.xml  <layer type="Const"><data offset=".." size=".."/>  ─┴─▶ weights.bin

`share` copies every distinct constant (same element type, shape and bytes) once
into `weights.bin`, rewrites the offsets and removes the per-graph files. Loaders
pass the file explicitly (`core.read_model(xml, bin)`; C++ `read_model(xml, bin)`;
Triton's openvino backend gets it linked as `model.bin`).
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ElementTree
from pathlib import Path

WEIGHTS = "weights.bin"
_ALIGN = 64


def share(graphs: list[Path], out: Path) -> None:
    """Move the constants of the IR files `graphs` (each with its `.bin`) into `out`, each once."""
    seen: dict[tuple, int] = {}
    with open(out, "wb") as stream:
        for xml in graphs:
            tree = ElementTree.parse(xml)
            own = xml.with_suffix(".bin")
            with open(own, "rb") as data:
                for layer in tree.getroot().iter("layer"):
                    node = layer.find("data")
                    if layer.get("type") != "Const" or node is None or node.get("offset") is None:
                        continue
                    data.seek(int(node.get("offset")))
                    chunk = data.read(int(node.get("size")))  # one constant at a time
                    key = (node.get("element_type"), node.get("shape"), hashlib.blake2b(chunk, digest_size=16).digest())
                    if key not in seen:
                        stream.write(b"\0" * (-stream.tell() % _ALIGN))
                        seen[key] = stream.tell()
                        stream.write(chunk)
                    node.set("offset", str(seen[key]))
            tree.write(xml, encoding="utf-8", xml_declaration=True)
            own.unlink()
