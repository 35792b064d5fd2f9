"""``fairseq-plugins-dir``: print the directory to pass as ``--user-dir``.

fairseq resolves ``--user-dir`` as a filesystem path, so a relative
``--user-dir fairseq_plugins`` only works from the repository root; this works
from anywhere: ``fairseq-train ... --user-dir "$(fairseq-plugins-dir)"``.
"""

import os


def user_dir() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    print(user_dir())


if __name__ == "__main__":
    main()
