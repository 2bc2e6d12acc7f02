"""Scenario modules, one per domain (`bench/suites/<service>.py`): importing this
package registers every scenario they define with `bench.scenarios.register`."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
