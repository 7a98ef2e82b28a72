"""graphs/README.md documents every manifest key the code writes or reads (tests/support/schema_doc.py)."""

from __future__ import annotations

import json

from support.schema_doc import documented, read_keys, undocumented_keys


def test_every_key_the_runtime_reads_is_documented():
    assert sorted(read_keys() - documented()) == []


def test_every_key_an_export_writes_is_documented(artifact):
    """The backbones here; task, dtype and XLA AOT manifests where their tests check them."""
    assert undocumented_keys(json.loads((artifact / "manifest.json").read_text())) == []
