"""Print the first fenced code block under a README heading, so CI runs exactly what users read.

Usage: python3 .ci/readme_block.py README.md Install
"""

import re
import sys


def block(readme_text, heading):
    section = re.search(rf"^#+ {re.escape(heading)}\s*$(.*?)(?=^#+ |\Z)", readme_text, re.M | re.S)
    if not section:
        sys.exit(f"readme_block: no '{heading}' heading in the README")
    code = re.search(r"^```[a-z]*\n(.*?)^```", section.group(1), re.M | re.S)
    if not code:
        sys.exit(f"readme_block: no fenced code block under '{heading}'")
    return code.group(1)


if __name__ == "__main__":
    path, heading = sys.argv[1:3]
    with open(path, encoding="utf-8") as f:
        print(block(f.read(), heading))
