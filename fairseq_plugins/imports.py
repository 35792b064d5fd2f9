"""``import_all``: import every module of a package folder, as fairseq does for its own registries."""

import importlib
import pkgutil


def import_all(package_name, package_path):
    for module in pkgutil.iter_modules(package_path):
        importlib.import_module(f"{package_name}.{module.name}")
