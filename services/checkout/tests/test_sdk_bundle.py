"""The SDK's classic-script build is made from the ES module (unit): it has no module
syntax, defines `window.BOS` with the module's API when run as a plain script, and a module
that no longer fits the transformation fails loudly instead of serving a stale build."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources

import pytest

from checkout.sdk_bundle import SdkBuildError, classic_script

MODULE = resources.files("checkout").joinpath("static/checkout.js").read_text()

# A classic script in a bare browser-like global scope: `document.currentScript` is the tag.
RUN_AS_CLASSIC_SCRIPT = """
globalThis.window = globalThis;
globalThis.document = {
  currentScript: { src: "https://bos.example.com/sdk/v1/checkout.global.js" },
  querySelectorAll: () => [],
};
const vm = require("vm");
vm.runInThisContext(require("fs").readFileSync(0, "utf8"), { filename: "checkout.global.js" });
const api = window.BOS;
console.log(JSON.stringify({
  checkout: typeof api.checkout, version: api.version,
  badId: (() => { try { api.checkout({ checkoutId: "x", sessionToken: "t" }); }
                  catch (e) { return e.message; } })(),
}));
"""


def test_classic_build_has_no_module_syntax_and_the_same_code() -> None:
    script = classic_script(MODULE)
    assert "import.meta" not in script and "export " not in script
    assert "function checkout(options)" in script
    assert script.count("window.BOS = BOS") == 1
    assert script.rstrip().endswith("})();")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_classic_build_defines_the_bos_global_with_the_module_api() -> None:
    ran = subprocess.run(
        ["node", "-e", RUN_AS_CLASSIC_SCRIPT],
        input=classic_script(MODULE),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    assert '"checkout":"function"' in ran.stdout and '"version":1' in ran.stdout
    assert "checkoutId must be a cs_ id" in ran.stdout


@pytest.mark.parametrize(
    "changed",
    [
        MODULE.replace("new URL(import.meta.url).origin", "location.origin"),
        MODULE + "\nexport default BOS;\n",
        MODULE + '\nimport { x } from "./x.js";\n',
    ],
)
def test_a_module_the_build_does_not_fit_fails_loudly(changed: str) -> None:
    with pytest.raises(SdkBuildError):
        classic_script(changed)
