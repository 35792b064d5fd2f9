"""Stock fairseq's own unit tests, run twice: as installed, and with this package loaded as fairseq
loads a ``--user-dir`` (``load_fairseq_plugins.py``). Exits 1 if any test's outcome differs, except
a test that fails without the package and passes with it (the package's repairs, e.g. checkpoint loading
on torch >= 2.6): those are listed as ``repaired``.

    python tests/upstream/run_fairseq_tests.py --json result.json                # tests from PyPI's sdist
    python tests/upstream/run_fairseq_tests.py --tests-dir CHECKOUT/tests --json result.json

Without ``--tests-dir`` the tests come from the sdist of the installed fairseq-fixed on PyPI
(``pip download --no-binary :all:``); it ships ``tests/test_*.py`` but not ``tests/utils.py``, so the
files that import ``tests.utils`` run only from a checkout of the fork's repository
(https://github.com/JackismyShephard/fairseq: at f6d7a657 its tests/test_*.py equal the sdist's but
for line endings). Files that import a
``tests.*`` module the directory lacks are left out and listed in the JSON, as are ``EXCLUDED``.
"""

import argparse
import glob
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ElementTree

HERE = os.path.dirname(os.path.abspath(__file__))
DISTRIBUTION = "fairseq-fixed"
# Minutes of end-to-end training runs; the CLIs with the user dir are this repository's own tests' subject.
EXCLUDED = {"test_binaries.py": "end-to-end CLI runs, tens of minutes on 2 CPU cores"}
OUTCOMES = {"failure": "failed", "error": "error", "skipped": "skipped"}  # JUnit XML tag -> outcome


def tests_from_sdist(work):
    """Download the installed fairseq-fixed's sdist from PyPI, extract its tests/ into ``work``; where from."""
    version = importlib.metadata.version(DISTRIBUTION)
    subprocess.run([sys.executable, "-m", "pip", "download", f"{DISTRIBUTION}=={version}", "--no-deps",
                    "--no-binary", ":all:", "--no-build-isolation", "--quiet", "-d", work], check=True)
    (archive,) = glob.glob(os.path.join(work, "*.tar.gz"))
    with tarfile.open(archive) as sdist:
        members = [m for m in sdist.getmembers() if m.name.split("/")[1:2] == ["tests"] and m.isfile()]
        for member in members:
            member.name = member.name.split("/", 1)[1]
        sdist.extractall(work, members=members, filter="data")
    return f"PyPI sdist {DISTRIBUTION}=={version}"


# ``from tests import X``, ``from . import X``, ``from tests.X import``, ``from .X import``, ``import tests.X``
TESTS_IMPORT = re.compile(r"^\s*(?:from\s+(?:tests|\.)\s+import\s+(\w+)|from\s+(?:tests)?\.(\w+)\S*\s+import"
                          r"|import\s+tests\.(\w+))", flags=re.M)


def missing_test_modules(path, tests_dir, seen=None):
    """The ``tests.*`` modules that ``path`` needs, directly or through other test modules, and
    ``tests_dir`` lacks."""
    seen = set() if seen is None else seen
    missing = set()
    with open(path, encoding="utf-8") as file:
        for groups in TESTS_IMPORT.findall(file.read()):
            name = next(group for group in groups if group)
            module = os.path.join(tests_dir, name + ".py")
            if not os.path.exists(module):
                missing.add(name)
            elif module not in seen:
                seen.add(module)
                missing |= missing_test_modules(module, tests_dir, seen)
    return missing


def choose_files(tests_dir):
    chosen, left_out = [], {}
    for path in sorted(glob.glob(os.path.join(tests_dir, "test_*.py"))):
        name = os.path.basename(path)
        missing = missing_test_modules(path, tests_dir)
        if name in EXCLUDED:
            left_out[name] = EXCLUDED[name]
        elif missing:
            left_out[name] = "needs " + ", ".join(f"tests.{module}" for module in sorted(missing)) + ", not shipped"
        else:
            chosen.append(os.path.join("tests", name))
    return chosen, left_out


def outcomes(junit_xml):
    """test id -> passed | failed | error | skipped, from pytest's JUnit XML."""
    results = {}
    for case in ElementTree.parse(junit_xml).iter("testcase"):
        kinds = [OUTCOMES[child.tag] for child in case if child.tag in OUTCOMES]
        test = "::".join(filter(None, (case.get("classname"), case.get("name"))))  # a collection error: the file
        results[test] = kinds[0] if kinds else "passed"
    return results


def run_pytest(work, files, plugin):
    """One pytest run of ``files`` in ``work``; its outcomes and wall time."""
    name = "with_plugin" if plugin else "without_plugin"
    junit = os.path.join(work, f"{name}.xml")
    plugin_flags = ["-p", "load_fairseq_plugins"] if plugin else []
    command = [sys.executable, "-m", "pytest", "-c", os.path.join(work, "pytest.ini"), "-p", "no:cacheprovider",
               "-q", "--continue-on-collection-errors", f"--junitxml={junit}", *plugin_flags, *files]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": HERE}
    started = time.time()
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    if not os.path.exists(junit):  # pytest stopped before running anything (e.g. the plugin failed to import)
        sys.exit(f"pytest {name} wrote no results (exit {result.returncode}):\n{(result.stdout + result.stderr)[-3000:]}")
    return outcomes(junit), round(time.time() - started, 1)


def counts(results):
    return {kind: list(results.values()).count(kind) for kind in ("passed", "failed", "error", "skipped")}


def compare(without, with_plugin):
    """(differences, repaired): tests whose outcome the package changes; of those, the ones it makes pass."""
    changed = [{"test": test, "without_plugin": without.get(test, "absent"), "with_plugin": with_plugin.get(test, "absent")}
               for test in sorted(set(without) | set(with_plugin)) if without.get(test) != with_plugin.get(test)]
    repaired = [change["test"] for change in changed
                if change["with_plugin"] == "passed" and change["without_plugin"] in ("failed", "error")]
    return [change for change in changed if change["test"] not in repaired], repaired


def checkout_commit(tests_dir):
    result = subprocess.run(["git", "-C", tests_dir, "rev-parse", "HEAD"], capture_output=True, text=True)
    return f" (commit {result.stdout.strip()})" if result.returncode == 0 else ""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests-dir", help="fairseq's tests/ directory (default: from PyPI's sdist)")
    parser.add_argument("--json", help="write the comparison here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fairseq-tests-") as work:
        if args.tests_dir:
            shutil.copytree(args.tests_dir, os.path.join(work, "tests"))
            source = os.path.abspath(args.tests_dir) + checkout_commit(args.tests_dir)
        else:
            source = tests_from_sdist(work)
        # fairseq's tests import themselves as the package ``tests``; an empty config keeps ours out
        open(os.path.join(work, "tests", "__init__.py"), "a").close()
        with open(os.path.join(work, "pytest.ini"), "w") as file:
            file.write("[pytest]\n")
        files, left_out = choose_files(os.path.join(work, "tests"))
        without, without_seconds = run_pytest(work, files, plugin=False)
        with_plugin, with_seconds = run_pytest(work, files, plugin=True)
    differences, repaired = compare(without, with_plugin)
    report = {
        "fairseq": f"{DISTRIBUTION} {importlib.metadata.version(DISTRIBUTION)}",
        "torch": importlib.metadata.version("torch"),
        "numpy": importlib.metadata.version("numpy"),
        "python": sys.version.split()[0],
        "tests_from": source,
        "command": " ".join(["python", "tests/upstream/run_fairseq_tests.py", *(sys.argv[1:] if argv is None else argv)]),
        "files": files,
        "files_left_out": left_out,
        "without_plugin": {**counts(without), "seconds": without_seconds},
        "with_plugin": {**counts(with_plugin), "seconds": with_seconds},
        "differences": differences,
        "repaired": repaired,
        "not_passing_in_both": sorted(test for test, outcome in without.items()
                                      if outcome in ("failed", "error") and with_plugin.get(test) == outcome),
    }
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=1)
    print(json.dumps({key: report[key] for key in ("tests_from", "without_plugin", "with_plugin", "repaired")}))
    for difference in differences:
        print(f"DIFFERENT: {difference['test']}: {difference['without_plugin']} without the plugin, "
              f"{difference['with_plugin']} with it")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
