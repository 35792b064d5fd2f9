"""Learning-rate schedulers: importing every module of this folder registers them with fairseq."""

from fairseq_plugins.imports import import_all

import_all(__name__, __path__)
