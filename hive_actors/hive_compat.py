"""Hive's ``framework.*`` import paths, served by hive_actors when Hive is not installed.

`install()` appends a finder to the *end* of ``sys.meta_path``: a real installed ``framework``
package is found first by the ordinary finders, so this never shadows Hive. Without one,
``framework.llm.provider`` (``Tool``, ``ToolUse``, ``ToolResult``), ``framework.runner``,
``framework.runtime.agent_runtime``, ``framework.runtime.execution_stream`` and the
``framework.graph`` records resolve to the hive_actors modules below. ``import hive_actors``
installs it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence

__all__ = ["ALIASES", "install"]

ALIASES = {
    "framework.llm.provider": "hive_actors.framework_llm_provider",
    "framework.runner": "hive_actors.runner",
    "framework.runtime.agent_runtime": "hive_actors.runtime.agent_runtime",
    "framework.runtime.execution_stream": "hive_actors.runtime.execution_stream",
    "framework.runtime.event_bus": "hive_actors.runtime.event_bus",
    "framework.graph": "hive_actors.graph",
}
_PACKAGES = {"framework", "framework.llm", "framework.runtime"}


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "framework":
            top = getattr(sys.modules.get("framework"), "__spec__", None)
            if top is None or top.loader is not self:  # a real Hive: its own modules only
                return None
        if fullname in _PACKAGES:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        if fullname in ALIASES:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # a fresh module: the real one's __spec__ is never rewritten

    def exec_module(self, module: types.ModuleType) -> None:
        target = ALIASES.get(module.__name__)
        if target is None:
            module.__path__ = []  # one of the plain packages
        else:
            # the import system returns whatever sys.modules holds once this returns
            sys.modules[module.__name__] = importlib.import_module(target)


_FINDER = _Finder()


def install() -> None:
    """Serve ``framework.*`` when nothing else does (idempotent)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)
