"""rawtag: end-to-end music auto-tagging from raw waveforms (a teaching book and a small core).

The pieces, each taught in a chapter of the book:
- `rawtag.data`: MTAT's format and download, the synthetic set, audio decoding, preparation into one
  int16 memmap, normalization and batches (chapters 01-02);
- `rawtag.models`: the model registry, the paper's CNNs (chapters 03, 06) and the later sample-level,
  SE / ReSE-2 and mel-spectrogram models (chapter 07);
- `rawtag.train`, `rawtag.metrics`, `rawtag.distributed`, `rawtag.checkpoints`, `rawtag.devices`: fitting
  (one process or several under torchrun), resuming, ROC-AUC and PR-AUC (chapter 03);
- `rawtag.runs` and `rawtag.inference`: a finished run read back, its best model loaded, scored on a
  split, and tagging any audio file (chapters 03, 07);
- `rawtag.profiles` and `rawtag.workspace`: how big a run is and where its data and runs live;
- `rawtag.plots`, `rawtag.show`, `rawtag.widgets`: what the chapters display; `rawtag.exercises`: the
  solutions to their exercises; `rawtag.book`: executing the chapters and building the book.

Every module's docstring, and every public function's and class's, ends with a line naming the chapter
that teaches it, as this one does (`tests/test_docstrings.py` checks them).

Chapter: 01_data
"""
__version__ = "0.1.0"
