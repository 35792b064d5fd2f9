"""A generated toy treebank in CoNLL-U: sentences of a small English-like grammar with gold trees.

``[adverb] subject verb object [preposition noun phrase] .``, noun phrases ``[det] [adj]* noun``;
heads and labels follow from the grammar, so a small parser learns them in a few hundred updates.
"""

import os
import random

DETS, ADJS = ["the", "a", "this", "every"], ["big", "red", "old", "quick", "small"]
NOUNS = ["dog", "cat", "house", "car", "tree", "man", "bird", "river", "book", "child"]
VERBS, ADVS, PREPS = ["sees", "likes", "finds", "takes", "builds"], ["often", "today", "never"], ["in", "near", "on"]


def noun_phrase(rng, start, head_of_phrase, label):
    """Rows (form, upos, head, label) of a noun phrase whose words are numbered from ``start``."""
    words = []
    if rng.random() < 0.7:
        words.append((rng.choice(DETS), "DET", "det"))
    words += [(rng.choice(ADJS), "ADJ", "amod") for _ in range(rng.choice([0, 0, 1, 2]))]
    noun = start + len(words)
    rows = [(form, upos, noun, rel) for form, upos, rel in words]
    return rows + [(rng.choice(NOUNS), "NOUN", head_of_phrase, label)]


def sentence(rng):
    """Rows (form, upos, head, label) of one sentence; heads are 1-based word numbers."""
    rows = []
    adverb = rng.random() < 0.3
    subject = noun_phrase(rng, 1 + adverb, None, "nsubj")
    verb = 1 + adverb + len(subject)
    if adverb:
        rows.append((rng.choice(ADVS), "ADV", verb, "advmod"))
    rows += [(f, u, verb if h is None else h, r) for f, u, h, r in subject]
    rows.append((rng.choice(VERBS), "VERB", 0, "root"))
    rows += noun_phrase(rng, verb + 1, verb, "dobj")
    if rng.random() < 0.4:
        preposition = len(rows) + 1
        rows.append((rng.choice(PREPS), "ADP", verb, "prep"))
        rows += noun_phrase(rng, preposition + 1, preposition, "pobj")
    rows.append((".", "PUNCT", verb, "punct"))
    return rows


def conllu(rows, sent_id):
    lines = [f"# sent_id = {sent_id}", "# text = " + " ".join(row[0] for row in rows)]
    lines += [f"{i}\t{form}\t{form}\t{upos}\t_\t_\t{head}\t{label}\t_\t_" for i, (form, upos, head, label) in
              enumerate(rows, start=1)]
    return "\n".join(lines) + "\n\n"


def write_treebank(directory, sizes=(("train", 300), ("valid", 41), ("test", 43)), seed=0):
    """``directory/{split}.conllu`` with the given numbers of sentences; returns the directory."""
    os.makedirs(directory, exist_ok=True)
    rng = random.Random(seed)
    for split, count in sizes:
        with open(os.path.join(directory, f"{split}.conllu"), "w", encoding="utf-8") as file:
            file.writelines(conllu(sentence(rng), f"{split}-{i}") for i in range(count))
    return str(directory)
