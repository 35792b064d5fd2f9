"""Real article -> headline pairs for the recipe's small mode, from Debian's package database.

Each installed package's description in ``/var/lib/dpkg/status`` is a human-written one-line
synopsis (the headline) above a paragraph of prose (the article), the same shape as Gigaword's
first sentence -> headline pairs. No registry ships Gigaword or DUC (licensed), so CI trains on
these; the set is the machine's installed packages, so its size varies a little across machines.

    python package_descriptions.py OUT_DIR [--status /var/lib/dpkg/status]

writes ``{train,valid,test}.{article,headline}``: articles are the description's first 30
words (Gigaword's are one sentence), lowercased like Rush et al.'s Gigaword; a description
repeated by several packages (e.g. a library's variants) is kept once, and pairs are split by a
hash of the article, so a pair stays in the same split on every machine.
"""

import argparse
import hashlib
import os
import re
import sys

ARTICLE_WORDS = 30
MIN_ARTICLE_WORDS = 10
DESCRIPTION = re.compile(r"^Description: (.*)\n((?: .*\n?)*)", re.M)


def pairs(status_text):
    for block in status_text.split("\n\n"):
        description = DESCRIPTION.search(block)
        if not description:
            continue
        body = " ".join(line.strip() for line in description.group(2).splitlines() if line.strip() not in ("", "."))
        words = body.split()
        headline = description.group(1).strip()
        if len(words) >= MIN_ARTICLE_WORDS and headline:
            yield " ".join(words[:ARTICLE_WORDS]).lower(), headline.lower()


def split_of(article):
    bucket = int(hashlib.sha1(article.encode()).hexdigest(), 16) % 100
    return "test" if bucket < 8 else "valid" if bucket < 14 else "train"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--status", default="/var/lib/dpkg/status")
    args = parser.parse_args()
    if not os.path.isfile(args.status):
        sys.exit(f"package_descriptions.py: error: {args.status} not found: the small mode needs a Debian-based "
                 "machine, or RAW_DIR=DIR with {train,valid,test}.{article,headline}")
    with open(args.status, encoding="utf-8", errors="replace") as f:
        found = sorted(dict(pairs(f.read())).items())  # one headline per article
    os.makedirs(args.out_dir, exist_ok=True)
    files = {(split, side): open(os.path.join(args.out_dir, f"{split}.{side}"), "w", encoding="utf-8")
             for split in ("train", "valid", "test") for side in ("article", "headline")}
    counts = {"train": 0, "valid": 0, "test": 0}
    for article, headline in found:
        split = split_of(article)
        files[split, "article"].write(article + "\n")
        files[split, "headline"].write(headline + "\n")
        counts[split] += 1
    for f in files.values():
        f.close()
    print(f"package descriptions: {counts['train']} train, {counts['valid']} valid, {counts['test']} test pairs")


if __name__ == "__main__":
    main()
