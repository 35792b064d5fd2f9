"""Plain PyTorch building blocks, one per method; no fairseq imports."""
