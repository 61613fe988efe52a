"""The GitHub Actions workflows and the rendered Dockerfiles, checked offline.

GitHub is not reachable from here, so the workflows are linted (actionlint,
zizmor), parsed and held to what matters: reusable workflows declare their
inputs and outputs, build.yml accepts exactly what `invoke matrix --json`
emits, actions are pinned by commit, permissions are minimal. That their
commands work is tests/e2e/test_workflow_steps.py's business.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.stages import images
from cpython_wasm.targets import toolchain_spec
from tests.helpers import PROJECT_ROOT, invoke

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
REUSABLE = ("build.yml", "verify.yml")
INPUT_TYPES = {"string": str, "number": int, "boolean": bool}


def load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as true
    return workflow


def steps(workflow: dict, job: str) -> list[dict]:
    return workflow["jobs"][job]["steps"]


def matrix_rows(*options: str) -> list[dict]:
    result = invoke("matrix", "--json", "--no-check", *options, check=True)
    return json.loads(result.stdout)


def test_the_four_workflows_exist():
    assert {path.name for path in WORKFLOWS.glob("*.yml")} == {"build.yml", "ci.yml", "release.yml", "verify.yml"}


def test_actionlint_passes():
    result = subprocess.run([BIN / "actionlint", "-no-color"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_passes_offline():
    result = subprocess.run([BIN / "zizmor", "--offline", "--no-progress", WORKFLOWS], cwd=PROJECT_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_passes_on_every_rendered_dockerfile(tmp_path):
    recipes, dockerfiles = Recipes(), {}
    for combination in recipes.combinations():
        plan = recipes.resolve(combination.version, combination.sdk, combination.provider, combination.target,
                               arch="x86_64")
        for spec in (images.native_spec(plan), toolchain_spec(plan, lambda pin: None)):
            dockerfiles[spec.name] = spec.dockerfile
    assert len(dockerfiles) >= 9  # native per base, toolchain per SDK × provider
    assert any(name.startswith("emsdk-") for name in dockerfiles)
    for name, dockerfile in sorted(dockerfiles.items()):
        path = tmp_path / f"{name}.Dockerfile"
        path.write_text(dockerfile)
        result = subprocess.run([BIN / "hadolint", "--config", PROJECT_ROOT / ".hadolint.yaml", "--no-color", path],
                                capture_output=True, text=True)
        assert result.returncode == 0, f"{name}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("name", ["build.yml", "ci.yml", "release.yml", "verify.yml"])
def test_every_action_is_pinned_by_commit_with_its_version(name):
    for line in (WORKFLOWS / name).read_text().splitlines():
        uses = re.match(r"\s*(?:- )?uses:\s*(\S+)", line)  # not in comments
        if uses and not uses.group(1).startswith("$/"):  # `$/...`: a workflow of this repository
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses.group(1)), line
            assert re.search(r"# v\d+\.\d+\.\d+$", line), f"no version comment: {line}"


@pytest.mark.parametrize("name", ["build.yml", "ci.yml", "release.yml", "verify.yml"])
def test_permissions_are_minimal_and_untrusted_code_never_gets_them(name):
    workflow = load(name)
    text = (WORKFLOWS / name).read_text()
    assert "pull_request_target" not in text
    assert "persist-credentials: false" in text if "actions/checkout" in text else True
    for job_name, job in workflow["jobs"].items():
        if name == "build.yml" and job_name == "attest":
            assert "permissions" not in job  # it has what a caller that asks for attestation grants
            continue
        assert "permissions" in job, f"{name}: job {job_name} declares no permissions"
        writes = {scope for scope, level in job["permissions"].items() if level == "write"}
        allowed = {("release.yml", "build"): {"id-token", "attestations"}, ("release.yml", "flavours"): {"id-token", "attestations"},
                   ("release.yml", "publish"): {"contents"}}
        assert writes <= allowed.get((name, job_name), set()), f"{name}: job {job_name} writes {writes}"
    if name != "build.yml":
        assert workflow["permissions"] == {}


def test_the_release_builds_each_flavour_through_build_yml():
    """A flavour is an input of build.yml, given to both `invoke build` and `invoke test`; the release builds each
    flavour of recipes/flavours/ and publishes it with the rest."""
    build = load("build.yml")
    assert build["on"]["workflow_call"]["inputs"]["flavour"]["default"] == ""
    runs = {step.get("name"): step.get("run", "") for step in build["jobs"]["build"]["steps"]}
    assert all('${FLAVOUR:+--flavour "$FLAVOUR"}' in runs[name] for name in ("Build", "Test"))
    release = load("release.yml")
    job = release["jobs"]["flavours"]
    assert job["uses"] == "$/.github/workflows/build.yml" and job["with"]["flavour"] == "${{ matrix.flavour }}"
    assert set(job["strategy"]["matrix"]["flavour"]) == set(Recipes().flavours)
    assert "flavours" in release["jobs"]["publish"]["needs"]


def test_build_yml_is_reusable_with_declared_inputs_and_outputs():
    workflow = load("build.yml")
    call = workflow["on"]["workflow_call"]
    assert {"python", "sdk", "provider", "target", "attest"} <= set(call["inputs"])
    assert all(spec["type"] in INPUT_TYPES for spec in call["inputs"].values())
    assert set(call["outputs"]) == {"artifact", "sha256"}
    job = workflow["jobs"]["build"]
    for name, output in call["outputs"].items():
        assert output["value"] == f"${{{{ jobs.build.outputs.{name} }}}}"
        assert job["outputs"][name] == f"${{{{ steps.build.outputs.{name} }}}}"
    assert any(step.get("id") == "build" for step in job["steps"])


def test_verify_yml_is_reusable_and_runs_the_standalone_script():
    workflow = load("verify.yml")
    assert {"artifact-url", "artifact-name", "lockfile", "recipes-ref"} <= set(workflow["on"]["workflow_call"]["inputs"])
    commands = "\n".join(step.get("run", "") for step in steps(workflow, "verify"))
    assert "python3 recipes/scripts/verify_artifact.py" in commands


def test_build_yml_accepts_exactly_what_invoke_matrix_emits():
    inputs = load("build.yml")["on"]["workflow_call"]["inputs"]
    rows = matrix_rows("--only", "latest")
    assert rows
    from_matrix = {name for name in inputs if name in rows[0]}
    assert {name for name, spec in inputs.items() if spec.get("required")} <= from_matrix
    for row in rows:
        for name in from_matrix:
            assert isinstance(row[name], INPUT_TYPES[inputs[name]["type"]]), (name, row)


@pytest.mark.parametrize("name, selection", [("ci.yml", "latest"), ("release.yml", "official")])
def test_the_matrix_job_feeds_build_yml(name, selection):
    workflow = load(name)
    matrix_job = workflow["jobs"]["matrix"]
    assert matrix_job["outputs"]["matrix"] == "${{ steps.matrix.outputs.matrix }}"
    step = next(step for step in matrix_job["steps"] if step.get("id") == "matrix")
    assert f".venv/bin/invoke matrix --json --only {selection} --no-check" in step["run"]
    build = workflow["jobs"]["build"]
    assert build["uses"] == "$/.github/workflows/build.yml"
    assert build["strategy"]["matrix"]["include"] == "${{ fromJSON(needs.matrix.outputs.matrix) }}"
    inputs = load("build.yml")["on"]["workflow_call"]["inputs"]
    row = matrix_rows("--only", selection)[0]
    for key in (key for key in inputs if key in row):
        assert build["with"][key] == f"${{{{ matrix.{key} }}}}"


def test_invoke_matrix_writes_the_buildable_rows_as_a_step_output(tmp_path):
    output = tmp_path / "github_output"
    invoke("matrix", "--json", "--only", "latest", "--no-check", env={"GITHUB_OUTPUT": str(output)}, check=True)
    name, _, value = output.read_text().strip().partition("=")
    assert name == "matrix" and "\n" not in value
    assert json.loads(value) == [row for row in matrix_rows("--only", "latest") if row["buildable"] is not False]


def test_build_yml_runs_the_readme_commands_and_caches_by_the_pins():
    readme = (PROJECT_ROOT / "README.md").read_text()
    commands = [step["run"] for step in steps(load("build.yml"), "build") if "run" in step]
    assert "./scripts/setup" in readme and any("./scripts/setup" in command for command in commands)
    assert any(".venv/bin/invoke build --python" in command for command in commands)
    assert any(".venv/bin/invoke verify" in command for command in commands)
    cache = next(step for step in steps(load("build.yml"), "build") if step.get("uses", "").startswith("actions/cache@"))
    assert "hashFiles('lockfiles/*.json'" in cache["with"]["key"]
    assert cache["with"]["path"] == "~/.cache/cpython-wasm-recipes"


def test_the_readme_shows_how_to_use_the_workflows():
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("## Use from GitHub Actions", 1)[1].split("\n## ", 1)[0]
    for workflow in REUSABLE:
        assert f"/.github/workflows/{workflow}@" in section


def test_invoke_matrix_refuses_an_unknown_selection():
    result = invoke("matrix", "--json", "--no-check", "--only", "newest")
    assert result.returncode == 2
    assert "--only 'newest' is not a selection" in result.stderr and "all, latest, official" in result.stderr
