"""End to end: build.yml's steps, executed in order on this machine.

GitHub is unreachable, so the workflow's job is played here the way a runner
would: `${{ ... }}` expressions substituted (inputs from one row of `invoke
matrix --json`, step outputs from each step's $GITHUB_OUTPUT), every `run:`
step run by bash with -e and pipefail in a fresh clone of this repository,
and each `uses:` step replaced by its local equivalent:

    actions/checkout         git clone of this repository (its committed HEAD)
    actions/setup-python     nothing: scripts/setup makes .venv with the machine's python3
    actions/cache            nothing: the per-user download cache is already there
    actions/upload-artifact  every listed path must exist; copied to an "uploaded" directory

A runner's user is not root and the build step uses sudo; here the tests run
as root and sudo is not installed, so a `sudo` on PATH runs its command as is.
The store is the e2e session's (CPYTHON_WASM_BUILD_DIR), so the stages are
found, not rebuilt, as on a runner whose cache is warm.
"""

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.e2e.conftest import SELECTION
from tests.helpers import INVOKE, PROJECT_ROOT, sha256

pytestmark = pytest.mark.e2e

BUILD_YML = PROJECT_ROOT / ".github" / "workflows" / "build.yml"
EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")
SUDO = '#!/bin/sh\n# sudo as root: drop its options, run the command.\nwhile [ "${1#-}" != "$1" ]; do shift; done\nexec "$@"\n'


def evaluate(text: str, context: dict) -> str:
    """Substitute `${{ a.b.c }}` from the context; any other expression fails the test (so it gets noticed)."""
    def value(match):
        current = context
        for part in match.group(1).split("."):
            if not isinstance(current, dict) or part not in current:
                pytest.fail(f"build.yml uses ${{{{ {match.group(1)} }}}}, which this test cannot evaluate")
            current = current[part]
        return str(current).lower() if isinstance(current, bool) else str(current)
    return EXPRESSION.sub(value, text)


def read_outputs(path) -> dict:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line) if path.exists() else {}


@pytest.fixture(scope="session")
def played(built, workspace, tmp_path_factory):
    """Run build.yml's `build` job for the matrix row of the README's build; its outputs and uploads."""
    workflow = yaml.safe_load(BUILD_YML.read_text())
    call = workflow.pop(True, None) or workflow["on"]
    row = next(r for r in json.loads(subprocess.run([INVOKE, "matrix", "--json", "--no-check"], cwd=PROJECT_ROOT,
                                                    capture_output=True, text=True, check=True).stdout)
               if (r["python"], r["sdk"], r["provider"], r["target"]) == (*map(str, SELECTION), "wasi"))
    inputs = {name: row.get(name, spec.get("default")) for name, spec in call["workflow_call"]["inputs"].items()}
    context = {"inputs": inputs, "steps": {}}
    root = tmp_path_factory.mktemp("runner")
    checkout, uploaded, tools = root / "work", root / "uploaded", root / "tools"
    tools.mkdir()
    (tools / "sudo").write_text(SUDO)
    (tools / "sudo").chmod(0o755)
    job = workflow["jobs"]["build"]
    log = []
    for number, step in enumerate(job["steps"]):
        uses = step.get("uses", "").split("@")[0]
        if uses == "actions/checkout":
            assert evaluate(step["with"]["repository"], context) == "cpython-wasm-recipes/cpython-wasm-recipes"
            subprocess.run(["git", "clone", "--quiet", PROJECT_ROOT, checkout], check=True)
        elif uses in ("actions/setup-python", "actions/cache"):
            continue
        elif uses == "actions/upload-artifact":
            uploaded.mkdir()
            for path in evaluate(step["with"]["path"], context).split():
                # As upload-artifact does: a pattern may match nothing (a warning there), a path must exist.
                matches = sorted(checkout.glob(path)) if "*" in path else [checkout / path]
                assert all(match.is_file() for match in matches), f"upload-artifact: {path} was not made"
                for match in matches:
                    shutil.copy(match, uploaded)
            context["uploaded_name"] = evaluate(step["with"]["name"], context)
        else:
            assert not uses, f"build.yml uses {uses}, which has no local equivalent here"
            output = root / f"github_output_{number}"
            environment = {**os.environ, **{k: evaluate(str(v), context) for k, v in step.get("env", {}).items()},
                           "GITHUB_OUTPUT": str(output), "PATH": f"{tools}:{os.environ['PATH']}",
                           "CPYTHON_WASM_BUILD_DIR": str(workspace["build"])}
            result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", evaluate(step["run"], context)],
                                    cwd=checkout, env=environment, capture_output=True, text=True, timeout=3600)
            log.append((step.get("name"), result))
            assert result.returncode == 0, f"step {step.get('name')!r}:\n{result.stdout}\n{result.stderr[-6000:]}"
            if "id" in step:
                context["steps"][step["id"]] = {"outputs": read_outputs(output)}
    outputs = {name: evaluate(value, context) for name, value in job["outputs"].items()}
    return {"row": row, "outputs": outputs, "uploaded": uploaded, "log": log, "context": context}


def test_build_yml_steps_build_test_verify_and_upload(built, played):
    assert played["outputs"] == {"artifact": played["row"]["artifact"], "sha256": sha256(built["artifact"])}
    name = played["row"]["artifact"]
    assert played["context"]["uploaded_name"] == name
    # The profile it was built with (profile-guided: the lockfile's build.pgo), which a rebuild needs.
    profile = json.loads((played["uploaded"] / f"{name}.json").read_text())["build"]["pgo"]
    assert {path.name for path in played["uploaded"].iterdir()} == {
        f"{name}.tar.gz", f"{name}.debug.tar.gz", f"{name}.devkit.tar.gz", f"{name}.test-fast.json", f"{name}.provenance.json",
        f"{name}.cdx.json", "SHA256SUMS", f"{name}.json", profile["file"]}
    assert sha256(played["uploaded"] / profile["file"]) == profile["sha256"]
    verify = dict(played["log"])["Verify"]
    assert "verified:" in verify.stdout and f"{name}.tar.gz: OK" in verify.stdout
    assert f"{name}.debug.tar.gz: OK" in verify.stdout and f"{name}.devkit.tar.gz: OK" in verify.stdout
    report = json.loads((played["uploaded"] / f"{name}.test-fast.json").read_text())
    assert report["passed"] is True and report["python_wasm_sha256"] == built["lock"]["outputs"]["python.wasm"]["sha256"]
    assert json.loads((played["uploaded"] / f"{name}.json").read_text())["tests"]["fast"]["passed"] is True


def test_the_uploaded_artifact_verifies_with_the_standalone_script(played):
    name = played["row"]["artifact"]
    uploaded = played["uploaded"]
    result = subprocess.run(["python3", "-I", "-S", PROJECT_ROOT / "scripts" / "verify_artifact.py",
                             uploaded / f"{name}.tar.gz", "--lock", uploaded / f"{name}.json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
