"""Console scripts for what fairseq's own CLIs do not do."""
