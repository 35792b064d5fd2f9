"""Real local data for the multi-ticket recipe's small mode: Debian package descriptions labelled by Section.

    python package_sections.py OUT_DIR [--status /var/lib/dpkg/status] [--min-count 25]
        [--licenses /usr/share/common-licenses]

writes, lowercased and split into words and punctuation:

- ``{train,valid,test}.input0`` / ``.label``: a package's synopsis and the first 60 words of its
  description, and its ``Section:`` (archive-area prefixes such as ``contrib/`` removed); only
  sections with at least ``--min-count`` packages are kept (a text repeated by several packages
  is kept once). Split by a hash of the text (70/15/15), so an example stays in its split on
  every machine; the set is the machine's installed packages, so its size varies.
- ``pretrain.{train,valid}``: English text for masked-LM pretraining: the licence texts every
  Debian system has in ``/usr/share/common-licenses`` plus the TRAINING descriptions only (no
  valid/test text), one paragraph per line.
"""

import argparse
import collections
import hashlib
import os
import re
import sys

WORDS = 60
TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
FIELD = re.compile(r"^([A-Za-z-]+):(.*)$")


def tokenize(text):
    return " ".join(TOKEN.findall(text.lower()))


def packages(status_text):
    """(section, synopsis + description) of each package block that has both."""
    for block in status_text.split("\n\n"):
        fields, current = {}, None
        for line in block.splitlines():
            match = FIELD.match(line)
            if match and not line.startswith(" "):
                current = match.group(1)
                fields[current] = match.group(2).strip()
            elif current == "Description" and line.strip() != ".":
                fields[current] += " " + line.strip()
        if fields.get("Section") and fields.get("Description"):
            yield fields["Section"].rsplit("/", 1)[-1], fields["Description"]


def split_of(text):
    bucket = int(hashlib.sha1(text.encode()).hexdigest(), 16) % 100
    return "test" if bucket < 15 else "valid" if bucket < 30 else "train"


def paragraphs(directory):
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, encoding="utf-8", errors="replace") as file:
                for paragraph in re.split(r"\n\s*\n", file.read()):
                    words = tokenize(paragraph)
                    if len(words.split()) >= 5:
                        yield words


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--status", default="/var/lib/dpkg/status")
    parser.add_argument("--licenses", default="/usr/share/common-licenses")
    parser.add_argument("--min-count", type=int, default=25)
    args = parser.parse_args()
    if not os.path.isfile(args.status):
        sys.exit(f"package_sections.py: error: {args.status} not found: the small mode needs a Debian-based machine")
    with open(args.status, encoding="utf-8", errors="replace") as file:
        labelled = {}
        for section, description in packages(file.read()):
            labelled.setdefault(" ".join(tokenize(description).split()[:WORDS]), section)
    counts = collections.Counter(labelled.values())
    kept = {section for section, n in counts.items() if n >= args.min_count}
    if len(kept) < 2:
        sys.exit(f"package_sections.py: error: fewer than 2 sections have {args.min_count} packages here; lower --min-count")
    os.makedirs(args.out_dir, exist_ok=True)
    files = {(split, kind): open(os.path.join(args.out_dir, f"{split}.{kind}"), "w", encoding="utf-8")
             for split in ("train", "valid", "test") for kind in ("input0", "label")}
    sizes = collections.Counter()
    train_text = []
    for text, section in sorted(labelled.items()):
        if section not in kept:
            continue
        split = split_of(text)
        files[split, "input0"].write(text + "\n")
        files[split, "label"].write(section + "\n")
        sizes[split] += 1
        if split == "train":
            train_text.append(text)
    for file in files.values():
        file.close()
    pretrain = list(paragraphs(args.licenses)) if os.path.isdir(args.licenses) else []
    pretrain += train_text
    held_out = pretrain[::20]  # every 20th paragraph: the masked-LM's validation text
    with open(os.path.join(args.out_dir, "pretrain.train"), "w") as file:
        file.writelines(line + "\n" for i, line in enumerate(pretrain) if i % 20)
    with open(os.path.join(args.out_dir, "pretrain.valid"), "w") as file:
        file.writelines(line + "\n" for line in held_out)
    print(f"sections {' '.join(sorted(kept))}; examples {dict(sizes)}; pretraining paragraphs {len(pretrain)}")


if __name__ == "__main__":
    main()
