"""pytest plugin (``-p load_fairseq_plugins``): load this package the way fairseq's CLIs load a
``--user-dir`` (``fairseq.utils.import_user_module``), before fairseq's own tests are collected, so
they run with every registration and repair of the package in place."""

import importlib.util
import os
from argparse import Namespace

from fairseq.utils import import_user_module

# find_spec locates the package without importing it: import_user_module does the import, as in the CLIs.
import_user_module(Namespace(user_dir=os.path.dirname(importlib.util.find_spec("fairseq_plugins").origin)))
