"""File readers and datasets: what a task reads from ``DATA`` and how it batches it.

- ``text_input``: numbered lines of a file or stdin, with one-line errors for what no reader can use.
- ``sentences``: datasets of whole sentences batched by length, and batches in index order.
- ``vocabulary``: the words and labels a checkpoint carries, and the training file's sha256.
- ``conll_ner``: CoNLL NER files (IOB1, IOB2, BIOES) and the span NER dataset.
- ``conllu_treebank``: CoNLL-U treebanks and the dependency-parsing dataset.

No fairseq registries here: the tasks in ``tasks/`` read and batch through these modules.
"""
