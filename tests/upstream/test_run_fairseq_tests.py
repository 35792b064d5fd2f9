"""The upstream comparison's own logic: which fairseq test files can run, and which changes fail it."""

from run_fairseq_tests import choose_files, compare


def test_files_needing_an_absent_tests_module_directly_or_through_another_are_left_out(tmp_path):
    files = {
        "test_direct.py": "from tests import utils as test_utils\n",
        "test_through.py": "import torch\nfrom tests.test_helper import mock_dict\n",
        "test_helper.py": "from .utils import create_dummy_data\n",
        "test_plain.py": "import unittest\n\n\ndef f():\n    from .test_own import x\n",
        "test_own.py": "from . import test_plain\n",  # a cycle, and nothing missing
        "test_binaries.py": "",
    }
    for name, source in files.items():
        (tmp_path / name).write_text(source)
    chosen, left_out = choose_files(str(tmp_path))
    assert chosen == ["tests/test_own.py", "tests/test_plain.py"]
    assert left_out == {"test_binaries.py": left_out["test_binaries.py"], "test_direct.py": "needs tests.utils, not shipped",
                        "test_helper.py": "needs tests.utils, not shipped", "test_through.py": "needs tests.utils, not shipped"}


def test_every_change_but_a_repair_is_a_difference():
    without = {"same": "passed", "repaired": "failed", "broken": "passed", "erroring": "failed", "skip": "skipped"}
    with_plugin = {"same": "passed", "repaired": "passed", "broken": "failed", "erroring": "error", "skip": "passed",
                   "new": "passed"}
    differences, repaired = compare(without, with_plugin)
    assert repaired == ["repaired"]
    assert [(d["test"], d["without_plugin"], d["with_plugin"]) for d in differences] == [
        ("broken", "passed", "failed"), ("erroring", "failed", "error"), ("new", "absent", "passed"),
        ("skip", "skipped", "passed")]
