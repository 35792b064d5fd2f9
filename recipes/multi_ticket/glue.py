"""GLUE MRPC / STS-B for fairseq's sentence_prediction, encoded with RoBERTa's GPT-2 BPE (full mode).

    python glue.py TASK GLUE_TASK_DIR ENCODER_JSON VOCAB_BPE OUT_DIR

reads GLUE's ``train.tsv`` and ``dev.tsv`` (MRPC: columns #1 String, #2 String, Quality; STS-B:
sentence1, sentence2, score) and writes ``{train,valid}.input0`` / ``.input1`` (BPE ids) and
``.label`` (MRPC 0/1; STS-B the score divided by 5, as fairseq's GLUE example does), like
fairseq's ``examples/roberta/preprocess_GLUE_tasks.sh``.
"""

import csv
import os
import sys

from fairseq.data.encoders.gpt2_bpe_utils import get_encoder

COLUMNS = {"MRPC": ("#1 String", "#2 String", "Quality"), "STS-B": ("sentence1", "sentence2", "score")}


def main():
    task, source, encoder_json, vocab_bpe, out = sys.argv[1:6]
    if task not in COLUMNS:
        sys.exit(f"glue.py: error: TASK must be one of {', '.join(COLUMNS)} (got {task!r})")
    encoder = get_encoder(encoder_json, vocab_bpe)
    first, second, label = COLUMNS[task]
    os.makedirs(out, exist_ok=True)
    for split, name in (("train", "train.tsv"), ("valid", "dev.tsv")):
        with open(os.path.join(source, name), encoding="utf-8-sig") as file:
            rows = list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))
        with open(os.path.join(out, f"{split}.input0"), "w") as a, open(os.path.join(out, f"{split}.input1"), "w") as b, \
                open(os.path.join(out, f"{split}.label"), "w") as labels:
            for row in rows:
                a.write(" ".join(map(str, encoder.encode(row[first].strip()))) + "\n")
                b.write(" ".join(map(str, encoder.encode(row[second].strip()))) + "\n")
                labels.write((str(float(row[label]) / 5.0) if task == "STS-B" else row[label]) + "\n")


if __name__ == "__main__":
    main()
