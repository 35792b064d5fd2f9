"""A deterministic toy translation corpus with enough structure for BLEU to mean something.

The source side is English-like (a small grammar of clauses with adjectives,
prepositional phrases, relative clauses and coordination). The target side is an
invented language that a model must actually learn, not copy:

- every word maps to an invented target word (a fixed lexicon built from ``seed``);
- nouns have a gender that the target determiner and adjectives agree with;
- plural nouns take a suffix, and verbs agree with their subject's number;
- adjectives follow their noun, and the verb moves to the end of relative clauses.

Same ``seed`` and sizes, same files, on any machine.
"""

import os
import random

NOUNS = (
    "dog cat bird horse teacher student doctor farmer king queen child baker river mountain "
    "house garden city village forest road bridge boat train letter book song apple tree flower "
    "window door table chair friend neighbour soldier painter singer writer judge pilot"
).split()
ADJECTIVES = "big small old young red green happy sad quiet loud tall short clever brave lazy kind".split()
VERBS = "see find like help follow watch call visit know meet carry paint build open".split()
PREPOSITIONS = "in near behind under over beside".split()
NUMBERS = "two three four five six seven".split()
SYLLABLES = "ka lo mi ne ru sa te vo zu ba di fe go hi ju pe qui ta".split()
GENDERS = ("m", "f", "n")
TARGET_DETERMINERS = {("the", "m"): "der", ("the", "f"): "die", ("the", "n"): "das",
                      ("a", "m"): "ein", ("a", "f"): "eine", ("a", "n"): "ein"}


class Lexicon:
    """The invented target language: words, genders and inflections, fixed by ``seed``."""

    def __init__(self, seed):
        rng = random.Random(seed)
        used = set()

        def invent(syllables):
            while True:
                word = "".join(rng.choice(SYLLABLES) for _ in range(syllables))
                if word not in used:
                    used.add(word)
                    return word

        self.words = {w: invent(2) for w in NOUNS + ADJECTIVES + VERBS + PREPOSITIONS + NUMBERS}
        self.words.update({"and": "und", "that": "das"})
        self.gender = {noun: rng.choice(GENDERS) for noun in NOUNS}

    def noun_phrase(self, determiner, adjectives, noun, plural):
        gender = "p" if plural else self.gender[noun]
        target_noun = self.words[noun] + ("en" if plural else "")
        target_adjectives = [self.words[a] + {"m": "er", "f": "e", "n": "es", "p": "en"}[gender] for a in adjectives]
        if plural:
            target_determiner = "die" if determiner == "the" else self.words[determiner]
        else:
            target_determiner = TARGET_DETERMINERS[determiner, gender]
        return [target_determiner, target_noun] + target_adjectives

    def verb(self, verb, plural_subject):
        return self.words[verb] + ("n" if plural_subject else "t")


class SentenceGenerator:
    def __init__(self, lexicon, rng):
        self.lex = lexicon
        self.rng = rng

    def noun_phrase(self, depth):
        """Returns (source tokens, target tokens, plural)."""
        rng = self.rng
        plural = rng.random() < 0.3
        noun = rng.choice(NOUNS)
        adjectives = rng.sample(ADJECTIVES, rng.choice((0, 0, 1, 1, 2)))
        if plural:
            determiner = rng.choice(("the", rng.choice(NUMBERS)))
            source = [determiner] + adjectives + [noun + "s"]
        else:
            determiner = rng.choice(("the", "a"))
            source = [determiner] + adjectives + [noun]
        target = self.lex.noun_phrase(determiner, adjectives, noun, plural)
        if depth < 2 and rng.random() < 0.25:
            preposition = rng.choice(PREPOSITIONS)
            pp_source, pp_target, _ = self.noun_phrase(depth + 1)
            source += [preposition] + pp_source
            target += [self.lex.words[preposition]] + pp_target
        if depth < 1 and rng.random() < 0.2:
            # Relative clause: "that sees the cat" -> "das <the cat> <sees>" (verb last).
            verb = rng.choice(VERBS)
            object_source, object_target, _ = self.noun_phrase(depth + 1)
            source += ["that", self.source_verb(verb, plural)] + object_source
            target += ["das"] + object_target + [self.lex.verb(verb, plural)]
        return source, target, plural

    @staticmethod
    def source_verb(verb, plural_subject):
        return verb if plural_subject else verb + "s"

    def clause(self):
        subject_source, subject_target, plural = self.noun_phrase(0)
        verb = self.rng.choice(VERBS)
        object_source, object_target, _ = self.noun_phrase(0)
        source = subject_source + [self.source_verb(verb, plural)] + object_source
        target = subject_target + [self.lex.verb(verb, plural)] + object_target
        return source, target

    def sentence(self):
        source, target = self.clause()
        if self.rng.random() < 0.3:
            second_source, second_target = self.clause()
            source += ["and"] + second_source
            target += ["und"] + second_target
        return " ".join(source), " ".join(target)


def generate_pairs(count, seed, lexicon_seed=0):
    generator = SentenceGenerator(Lexicon(lexicon_seed), random.Random(seed))
    return [generator.sentence() for _ in range(count)]


def write_corpus(out_dir, sizes=(("train", 20000), ("valid", 500), ("test", 500)), src="en", tgt="xx", seed=1):
    """Write ``{split}.{src}`` / ``{split}.{tgt}`` files; test pairs never occur in train."""
    os.makedirs(out_dir, exist_ok=True)
    seen = set()
    for offset, (split, count) in enumerate(sizes):
        rng_seed = seed * 1000 + offset
        pairs = []
        attempt = 0
        while len(pairs) < count:
            for pair in generate_pairs(count, rng_seed + attempt * 100):
                if pair not in seen and len(pairs) < count:
                    seen.add(pair)
                    pairs.append(pair)
            attempt += 1
        for lang, column in ((src, 0), (tgt, 1)):
            with open(os.path.join(out_dir, f"{split}.{lang}"), "w", encoding="utf-8") as f:
                f.writelines(pair[column] + "\n" for pair in pairs)
    return out_dir
