"""Text steps of the recipes that no CLI does: SGML test sets to text, cleaning, sentencepiece.

    python text_tools.py sgm IN.sgm OUT.txt
    python text_tools.py clean SRC TGT OUT_SRC OUT_TGT [--max-words 250] [--max-ratio 1.5]
    python text_tools.py spm-train MODEL_PREFIX VOCAB_SIZE FILE [FILE ...]
    python text_tools.py spm-encode MODEL IN OUT
    python text_tools.py chars IN OUT

Used by recipes/wmt14_en_de, recipes/duc2004 and (chars) recipes/lm_spike.
"""

import argparse
import re

SEGMENT = re.compile(r"<seg[^>]*>(.*)</seg>")


def sgm_to_text(sgm, out):
    """The segments of a WMT .sgm file, one a line, as sacrebleu reads them (no unescaping)."""
    with open(sgm, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as w:
        for line in f:
            match = SEGMENT.search(line)
            if match:
                w.write(match.group(1).strip() + "\n")


def clean(src, tgt, out_src, out_tgt, max_words, max_ratio):
    """Moses punctuation normalisation, then drop empty, over-long and badly length-mismatched pairs
    (the rules of Moses' clean-corpus-n.perl with ratio ``max_ratio``)."""
    from sacremoses import MosesPunctNormalizer

    normalizers = MosesPunctNormalizer(lang="en"), MosesPunctNormalizer(lang="de")
    kept = dropped = 0
    with open(src, encoding="utf-8", errors="replace") as fs, open(tgt, encoding="utf-8", errors="replace") as ft, \
            open(out_src, "w", encoding="utf-8") as ws, open(out_tgt, "w", encoding="utf-8") as wt:
        for line_src, line_tgt in zip(fs, ft, strict=True):
            pair = [n.normalize(line.strip()) for n, line in zip(normalizers, (line_src, line_tgt))]
            lengths = [len(text.split()) for text in pair]
            if min(lengths) == 0 or max(lengths) > max_words or max(lengths) > max_ratio * min(lengths):
                dropped += 1
                continue
            ws.write(pair[0] + "\n")
            wt.write(pair[1] + "\n")
            kept += 1
    print(f"clean: kept {kept} pairs, dropped {dropped}")


def spm_train(model_prefix, vocab_size, files):
    import sentencepiece as spm

    # hard_vocab_limit off: a small corpus gets the largest vocabulary it supports, not an error.
    spm.SentencePieceTrainer.train(
        input=",".join(files), model_prefix=model_prefix, vocab_size=vocab_size, character_coverage=1.0,
        model_type="unigram", input_sentence_size=10_000_000, shuffle_input_sentence=True,
        hard_vocab_limit=False, minloglevel=2,
    )


def spm_encode(model, inp, out):
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=model)
    with open(inp, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as w:
        for line in f:
            w.write(" ".join(processor.encode(line.strip(), out_type=str)) + "\n")


def characters(inp, out):
    """One token per character, spaces written as "_" (the PTB character-level convention)."""
    with open(inp, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as w:
        for line in f:
            line = " ".join(line.split())
            if line:
                w.write(" ".join("_" if char == " " else char for char in line) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sgm = commands.add_parser("sgm")
    sgm.add_argument("sgm")
    sgm.add_argument("out")
    cleaner = commands.add_parser("clean")
    for name in ("src", "tgt", "out_src", "out_tgt"):
        cleaner.add_argument(name)
    cleaner.add_argument("--max-words", type=int, default=250)
    cleaner.add_argument("--max-ratio", type=float, default=1.5)
    trainer = commands.add_parser("spm-train")
    trainer.add_argument("model_prefix")
    trainer.add_argument("vocab_size", type=int)
    trainer.add_argument("files", nargs="+")
    encoder = commands.add_parser("spm-encode")
    for name in ("model", "inp", "out"):
        encoder.add_argument(name)
    to_chars = commands.add_parser("chars")
    to_chars.add_argument("inp")
    to_chars.add_argument("out")
    args = parser.parse_args()
    if args.command == "sgm":
        sgm_to_text(args.sgm, args.out)
    elif args.command == "clean":
        clean(args.src, args.tgt, args.out_src, args.out_tgt, args.max_words, args.max_ratio)
    elif args.command == "spm-train":
        spm_train(args.model_prefix, args.vocab_size, args.files)
    elif args.command == "spm-encode":
        spm_encode(args.model, args.inp, args.out)
    else:
        characters(args.inp, args.out)


if __name__ == "__main__":
    main()
