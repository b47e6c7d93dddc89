"""The data: MagnaTagATune's format and download (`mtat`, `download`), the synthetic stand-in (`synth`),
decoding (`audio`), preparation into one int16 memmap (`prepare`), Eq. (1) (`normalize`) and training
batches (`batches`).

Chapter: 01_data
"""
