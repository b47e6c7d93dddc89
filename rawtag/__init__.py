"""rawtag: end-to-end music auto-tagging from raw waveforms (a teaching book and a small core).

The pieces, each taught in a chapter of the book:
- `rawtag.data`: MTAT's format and download, the synthetic set, audio decoding, preparation into one
  int16 memmap, normalization and batches (chapters 01-02);
- `rawtag.models`: the model registry and the paper's CNNs (chapters 03, 06);
- `rawtag.train` and `rawtag.metrics`: fitting, resuming, evaluating with ROC-AUC and PR-AUC (chapter 03).
"""
__version__ = "0.1.0"
