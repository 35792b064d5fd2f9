"""Running fairseq's commands from ours, and reading the validations they log.

- ``fairseq_command(name)``: fairseq's console script ``fairseq-<name>`` of this interpreter's
  environment (no PATH lookup when it is there).
- ``run_fairseq(command, log_path)``: the one runner. The command is echoed to stderr as ``+ ...``;
  its stdout and stderr go to ``log_path``; a non-zero exit is one error line naming the command,
  its exit status, the log and the log's last line (``FairseqCommandFailed``, a ``ConfigError``).
- ``validations(text, subset)``: every validation record of ``subset`` in a fairseq log
  (fairseq-train's or fairseq-validate's, ``--log-format simple``/``tqdm``/``none`` or ``json``), each a
  ``{field: value}`` dict in the order logged; ``last_validation`` the last one. Values are numbers
  where fairseq printed one.

From a shell (the recipes' ``last_validation`` helper in ``recipes/lib.sh``)::

    python -m fairseq_plugins.cli.fairseq_runs LOG [--valid-subset test] [--field accuracy]

prints the last validation of the split (``field value | ...``), or one field's value.
"""

import json
import os
import re
import shlex
import subprocess
import sys

from fairseq_plugins.cli.common import command_parser
from fairseq_plugins.errors import ConfigError

SIMPLE = re.compile(r"valid on '(?P<subset>[^']+)' subset \| (?P<fields>.*)")


class FairseqCommandFailed(ConfigError):
    pass


def fairseq_command(name):
    local = os.path.join(os.path.dirname(sys.executable), f"fairseq-{name}")
    return [local if os.path.exists(local) else f"fairseq-{name}"]


def run_fairseq(command, log_path, env=None):
    command = [str(part) for part in command]
    print("+ " + shlex.join(command), file=sys.stderr, flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    with open(log_path, "w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0:
        with open(log_path, errors="replace") as log:
            lines = [line.strip() for line in log if line.strip()]
        raise FairseqCommandFailed(f"{os.path.basename(command[0])} failed (exit {result.returncode}; log {log_path}): "
                                   f"{lines[-1] if lines else 'no output'}")


def number(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def validations(text, subset="valid"):
    records = []
    for line in text.splitlines():
        simple = SIMPLE.search(line)
        if simple and simple.group("subset") == subset:
            fields = (field.strip().split(" ", 1) for field in simple.group("fields").split(" | "))
            records.append({field[0]: number(field[1].strip()) for field in fields if len(field) == 2})
        elif f'"{subset}_' in line and "{" in line:  # --log-format json: {"valid_loss": "4.1", ...}
            try:
                record = json.loads(line[line.index("{"):])
            except ValueError:
                continue
            prefix = f"{subset}_"
            records.append({key[len(prefix):]: number(str(value)) for key, value in record.items() if key.startswith(prefix)})
    return records


def last_validation(text, subset="valid", source="the log"):
    records = validations(text, subset)
    if not records:
        raise ConfigError(f"{source}: no validation on '{subset}' logged (did the fairseq command fail?)")
    return records[-1]


def main(argv=None):
    parser = command_parser("python -m fairseq_plugins.cli.fairseq_runs", "The last validation a fairseq log records.")
    parser.add_argument("log", help="a fairseq-train or fairseq-validate log")
    parser.add_argument("--valid-subset", default="valid", help="the split (default valid)")
    parser.add_argument("--field", help="print only this field's value")
    args = parser.parse_args(argv)
    with open(args.log, errors="replace") as file:
        record = last_validation(file.read(), args.valid_subset, args.log)
    if args.field is None:
        print(" | ".join(f"{key} {value}" for key, value in record.items()))
    elif args.field in record:
        print(record[args.field])
    else:
        raise ConfigError(f"--field {args.field}: the validation on '{args.valid_subset}' logs {', '.join(record)}")


if __name__ == "__main__":
    from fairseq_plugins.errors import install_excepthook

    install_excepthook()
    main()
