"""A console script's numeric flag declares its bounds once, in its argparse ``type=``
(``options.bounded``): a value outside them, or not a number, is argparse's one line
``prog: error: argument --flag: must be <bounds> (got x)``, in the phrasing of ``bounded_field``."""

import argparse

import pytest

from fairseq_plugins.cli import (
    alone_quality, average_checkpoints, dip_evaluate, ensemble, explain, extrapolation, gradnorm, influence, ner_report,
    params, predict, quickstart, shift_invariance, tickets,
)
from fairseq_plugins.options import bounded, phrase

TICKETS = ["data", "--pretrained", "p.pt", "--out", "out", "--method", "base", "--members", "2"]
TICKET_TRAINING = ["--", "--task", "image_classification", "--max-update", "8"]
INFLUENCE = ["data", "--path", "a.pt", "--task", "image_classification", "--out", "out"]

# (command, the other arguments it needs, flag, a value outside the flag's bounds, the bounds)
CASES = [
    (ensemble, ["data", "--path", "a.pt:b.pt"], "--batch-size", "0", ">= 1"),
    (dip_evaluate, ["data", "--dip", "a.pt"], "--batch-size", "-1", ">= 1"),
    (explain, ["data", "--path", "a.pt"], "--top-k", "0", ">= 1"),
    (explain, ["data", "--path", "a.pt"], "--batch-size", "0", ">= 1"),
    (explain, ["data", "--path", "a.pt"], "--print", "-2", ">= -1"),
    (ner_report, ["data", "--path", "a.pt"], "--batch-size", "many", ">= 1"),
    (predict, ["--path", "a.pt"], "--batch-size", "0", ">= 1"),
    (predict, ["--path", "a.pt"], "--explain", "-1", ">= 0"),
    (predict, ["--path", "a.pt"], "--dip-eval-samples", "0", ">= 1"),
    (shift_invariance, ["data", "--path", "a.pt"], "--max-sentences", "0", ">= 1"),
    (shift_invariance, ["data", "--path", "a.pt"], "--max-offset", "-1", ">= 0"),
    (alone_quality, [], "--max-update", "0", ">= 1"),
    (alone_quality, [], "--train-size", "0", ">= 1"),
    (alone_quality, [], "--test-size", "0", ">= 1"),
    (extrapolation, [], "--max-train-length", "101", "[1, 100]"),
    (extrapolation, [], "--relative-max-distance", "0", ">= 1"),
    (extrapolation, [], "--max-update", "0", ">= 1"),
    (extrapolation, [], "--train-size", "-5", ">= 1"),
    (extrapolation, [], "--test-size", "0", ">= 1"),
    (quickstart, [], "--max-update", "0", ">= 1"),
    (quickstart, [], "--train-size", "1.5", ">= 1"),
    (average_checkpoints, ["--inputs", "dir", "--output", "avg.pt"], "--num-epoch-checkpoints", "0", ">= 1"),
    (average_checkpoints, ["--inputs", "dir", "--output", "avg.pt"], "--num-update-checkpoints", "0", ">= 1"),
    (tickets, TICKETS[:-2], "--members", "0", ">= 1"),
    (tickets, TICKETS, "--target-ratio", "1", "(0, 1)"),
    (tickets, TICKETS, "--rounds", "0", ">= 1"),
    (gradnorm, ["--arch", "transformer"], "--vocab-size", "4", ">= 5"),
    (gradnorm, ["--arch", "transformer"], "--src-len", "0", ">= 1"),
    (gradnorm, ["--arch", "transformer"], "--tgt-len", "0", ">= 1"),
    (gradnorm, ["--arch", "transformer"], "--batch-size", "0", ">= 1"),  # fairseq's flag, checked after parsing
    (gradnorm, ["--arch", "transformer", "--widths", "64"], "--widths", "0", ">= 1"),
    (params, ["--arch", "transformer"], "--vocab-size", "4", ">= 5"),
    (influence, INFLUENCE, "--top-k", "0", ">= 1"),
    (influence, INFLUENCE, "--print-tests", "-2", ">= -1"),
    (influence, INFLUENCE, "--pairs-per-batch", "0", ">= 1"),
]


@pytest.mark.parametrize("command, argv, flag, value, bounds", CASES,
                         ids=[f"{case[0].__name__.rsplit('.', 1)[1]}{case[2]}" for case in CASES])
def test_a_value_outside_a_flags_bounds_is_one_line_naming_flag_and_bounds(command, argv, flag, value, bounds, capsys):
    capsys.readouterr()
    argv = [*argv, flag, value] + (TICKET_TRAINING if command is tickets else [])
    with pytest.raises(SystemExit) as exit:
        command.parse_args(argv)
    assert exit.value.code == 2  # argparse's status for a usage error
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "| INFO |" not in line]
    assert len(lines) == 1, lines
    assert f"error: argument {flag}: must be " in lines[0] and phrase(bounds) in lines[0], lines[0]


def test_the_fairseq_train_max_update_that_tickets_reads_is_bounded_the_same_way(capsys):
    with pytest.raises(SystemExit):
        tickets.parse_args([*TICKETS, "--", "--task", "image_classification", "--max-update", "0"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "| INFO |" not in line]
    assert len(lines) == 1 and "error: argument --max-update: must be " in lines[0] and phrase(">= 1") in lines[0], lines


@pytest.mark.parametrize("number_type, bounds, inside, outside", [
    (int, ">= 1", ["1", "12"], ["0", "-3"]),
    (int, ">= -1", ["-1", "0"], ["-2"]),
    (float, "> 0", ["1e-9", "2.5"], ["0", "-1e-3", "nan"]),
    (float, "(0, 1)", ["0.3", "1e-6"], ["0", "1", "1.2"]),
    (int, "[1, 100]", ["1", "100"], ["0", "101"]),
])
def test_bounded_converts_values_within_and_refuses_the_rest_in_bounded_fields_phrasing(
        number_type, bounds, inside, outside):
    convert = bounded(number_type, bounds)
    for text in inside:
        value = convert(text)
        assert type(value) is number_type and value == number_type(text)
    for text in outside:
        with pytest.raises(argparse.ArgumentTypeError) as error:
            convert(text)
        assert str(error.value) == f"must be {phrase(bounds)} (got {number_type(text)!r})"


@pytest.mark.parametrize("number_type, text", [(int, "x"), (int, "2.5"), (float, "one"), (float, "")])
def test_bounded_refuses_a_non_number_naming_the_bounds(number_type, text):
    with pytest.raises(argparse.ArgumentTypeError) as error:
        bounded(number_type, ">= 1")(text)
    assert phrase(">= 1") in str(error.value) and repr(text) in str(error.value)


def test_malformed_bounds_fail_when_the_parser_is_built():
    with pytest.raises(ValueError, match="write a comparison"):
        bounded(int, "at least 1")
