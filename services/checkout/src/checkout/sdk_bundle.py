"""The SDK's classic-script build (`/sdk/v1/checkout.global.js`), made from the ES module.

`static/checkout.js` is the one source. A merchant who loads it with a plain
`<script src>` cannot run a module (`import.meta`, `export`), so the service serves the same
code wrapped in a function scope: the script's own URL (the BOS origin) comes from
`document.currentScript` instead of `import.meta.url`, the exports become locals, and the
module's last lines (which set `window.BOS`) make the global. The transformation is a few
exact text replacements; a module source they no longer match fails at import, so the two
builds cannot drift apart silently.
"""

from __future__ import annotations

import re

# What the module must contain, each exactly once, and what the classic build uses instead.
MODULE_ORIGIN = "new URL(import.meta.url).origin"
CLASSIC_ORIGIN = "new URL(SCRIPT_URL).origin"
MODULE_EXPORT_DEFAULT = "export default BOS;"
# A classic script's URL is known only while it runs for the first time; a loader that
# injects it without `currentScript` (rare) finds it by its path.
CLASSIC_PROLOGUE = """(function () {
"use strict";
var SCRIPT_URL = (function () {
  var s = document.currentScript;
  if (s && s.src) return s.src;
  var all = document.querySelectorAll('script[src*="/sdk/v1/checkout.global.js"]');
  return all.length ? all[all.length - 1].src : location.href;
})();
"""
CLASSIC_EPILOGUE = "})();\n"

_EXPORT_DECLARATION = re.compile(r"^export (function|const|let|class) ", re.MULTILINE)
_MODULE_SYNTAX = re.compile(r"^\s*(import|export)\b|import\.meta", re.MULTILINE)


class SdkBuildError(RuntimeError):
    """The module source no longer has the shape the classic build is made from."""


def _replace_once(source: str, old: str, new: str) -> str:
    count = source.count(old)
    if count != 1:
        raise SdkBuildError(f"expected {old!r} once in the SDK module, found it {count} times")
    return source.replace(old, new)


def classic_script(module_source: str) -> str:
    """The classic-script (IIFE) build of the SDK module: a `BOS` global, same API."""
    body = _replace_once(module_source, MODULE_ORIGIN, CLASSIC_ORIGIN)
    body = _replace_once(body, MODULE_EXPORT_DEFAULT, "")
    body = _EXPORT_DECLARATION.sub(r"\1 ", body)
    leftover = _MODULE_SYNTAX.search(body)
    if leftover is not None:
        line = body.count("\n", 0, leftover.start()) + 1
        raise SdkBuildError(f"module syntax left in the classic build at line {line}")
    header = "/* BOS checkout SDK v1, classic script: defines window.BOS. Same code as the\n"
    header += " * ES module /sdk/v1/checkout.js, wrapped. */\n"
    return header + CLASSIC_PROLOGUE + body.rstrip() + "\n" + CLASSIC_EPILOGUE
