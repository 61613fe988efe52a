"""Testing: CPython's own regression suite, run on a built artifact under its runtime.

    invoke test --python 3.13.5 --sdk 25 --provider debian [--suite fast|full] [--jobs N]

As CPython's WASI CI does it (`make test`): regrtest's main process is the
native build python of the same release (it schedules the tests and watches
the workers, with `--fast-ci`: every resource but cpu, random order, a
timeout per test), and each worker is the interpreter under test, started
through `--python`. Here that interpreter is the artifact itself: its
python.wasm and compiled standard library, with Lib/test from the release's
source added beside them, under wasmtime (precompiled once, so every worker
starts in a fraction of a second), inside the toolchain image, without
network, as an unprivileged user.

What comes out, for each suite:

    dist/<artifact>.test-<suite>.json    every count, each failure with its test id,
                                         whether it is known (and why), skipped modules
    lockfiles/<artifact>.json            `tests.<suite>`: the counts and known failures
    build/store/<hash>-tests-<suite>-<artifact>/   regrtest's JUnit XML and whole output

A failure CPython itself has on the platform is listed in recipes/tests.toml
with its reason and does not fail the task; any other failure does (exit 1).
"""

import json
import os
import re
import shutil
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from cpython_wasm.build import Build, BuildResult
from cpython_wasm.errors import BuildError, UserError
from cpython_wasm.files import sha256_path, write_atomically
from cpython_wasm.inputs.archives import safe_extract
from cpython_wasm.paths import CONTAINER_SOURCE, display_path
from cpython_wasm.recipes.artifacts import debug_artifact_name
from cpython_wasm.recipes.plan import Plan, Recipes
from cpython_wasm.recipes.suites import KnownFailure
from cpython_wasm.records.lock import record_test_results
from cpython_wasm.records.verify import record_checksums
from cpython_wasm.stages.executor import make_writable_for_container
from cpython_wasm.stages.stage import FileInput, Phase, ProductInput, Stage
from cpython_wasm.stages.store import normalise_modes

ARTIFACTS = "/artifacts"  # the artifact and its debug artifact, read-only (unpacked into WORK before the run)
WORK = "/work"  # the writable directory of the test run, inside the container
# regrtest's progress lines: "0:01:04 load avg: 3.66 [24/57] test_shutil passed", and for the modules of a
# test package "[17/480] test.test_asyncio.test_locks skipped".
_PROGRESS = re.compile(r"\[\s*\d+/\d+(?:/\d+)?\] (test[\w.]*) (.+)$")


def report_name(artifact_name: str, suite: str) -> str:
    return f"{artifact_name}.test-{suite}.json"


@dataclass(frozen=True)
class Failure:
    test: str  # a test id (test.test_x.Class.method), or a test module when the whole module failed
    module: str
    kind: str  # failure, error, or how the module failed (crashed, timed out...)
    known: KnownFailure | None

    def as_dict(self) -> dict:
        return {"test": self.test, "module": self.module, "kind": self.kind, "known": self.known is not None,
                **({"reason": self.known.reason} if self.known else {})}


def suite_tests(recipes: Recipes, suite: str, source: Path) -> tuple[list[str], list[str]]:
    """The suite's test modules present in this release's Lib/test, and those absent from it."""
    suites = recipes.tests.suites
    if suite not in suites:
        raise UserError(f"There is no test suite {suite!r}; the suites in {display_path(recipes.tests_path)} are "
                        f"{', '.join(suites)}. Pass one of them with --suite.")
    names = suites[suite].tests
    present = [name for name in names if (source / "Lib" / "test" / f"{name}.py").is_file()
               or (source / "Lib" / "test" / name).is_dir()]
    return present, [name for name in names if name not in present]


def flavour_tests(plan: Plan, tests: list[str], source: Path) -> tuple[list[str], list[str]]:
    """A flavour's part of a suite: the tests whose module it contains, and the others. test_x tests module x:
    left out where x is a module of the release's Lib/ the flavour does not ship, or else a C module (x or _x)
    its build leaves out; a test of the language itself (test_grammar, test_int) tests no module."""
    flavour = plan.flavour
    if flavour is None or (flavour.stdlib is None and flavour.host is None):
        return tests, []
    shipped = {module.split(".")[0] for module in flavour.stdlib or ()}
    without = set(flavour.host.without_modules if flavour.host else ())

    def contained(test: str) -> bool:
        module = test.removeprefix("test_")
        if (source / "Lib" / f"{module}.py").is_file() or (source / "Lib" / module).is_dir():
            return flavour.stdlib is None or module in shipped
        return not {module, f"_{module}"} & without

    kept, left_out = [], []
    for test in tests:
        (kept if contained(test) else left_out).append(test)
    return kept, left_out


def module_of(test_id: str, modules=()) -> str:
    """The test module regrtest ran a test id in, as it names it: test.test_os.FileTests.test_write -> test_os,
    test.test_asyncio.test_locks.LockTests.test_x -> test.test_asyncio.test_locks (when regrtest ran that)."""
    inside = [module for module in modules if test_id.startswith(f"test.{module}.") or test_id.startswith(f"{module}.")]
    if inside:
        return max(inside, key=len)
    parts = test_id.split(".")
    return parts[1] if parts[0] == "test" and len(parts) > 1 else parts[0]


ZERO_CASES = {"run": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0}


def read_junit(path: Path) -> tuple[dict, list[tuple[str, str]]]:
    """Counts of test cases, and (test id, failure or error) for each one that did not pass."""
    counts, failing = dict(ZERO_CASES), []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        counts["run"] += 1
        outcomes = {child.tag for child in case}
        if "failure" in outcomes or "error" in outcomes:
            kind = "failure" if "failure" in outcomes else "error"
            counts["failed" if kind == "failure" else "errors"] += 1
            failing.append((case.get("name"), kind))
        elif "skipped" in outcomes:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts, failing


def module_outcomes(log: str) -> dict[str, str]:
    """Each test module's outcome as regrtest printed it last ("passed", "skipped", "failed (1 error)"...)."""
    outcomes = {}
    for line in log.splitlines():
        match = _PROGRESS.search(line)
        if match:
            outcomes[match.group(1)] = match.group(2).split(" -- ")[0].strip()
    return outcomes


def module_passed(outcome: str) -> bool:
    return outcome.startswith(("passed", "skipped"))


def classify(failing: list[tuple[str, str]], outcomes: dict[str, str], known: list[KnownFailure]) -> list[Failure]:
    """Every failure, known or not: the failing test cases, and modules that failed without one (a crash)."""

    def known_for(test: str) -> KnownFailure | None:
        return next((entry for entry in known if entry.covers(test)), None)

    failures = [Failure(test, module_of(test, outcomes), kind, known_for(test) or known_for(module_of(test, outcomes)))
                for test, kind in failing]
    with_cases = {failure.module for failure in failures}
    for module, outcome in sorted(outcomes.items()):
        if not module_passed(outcome) and module not in with_cases:
            failures.append(Failure(module, module, outcome, known_for(module)))
    return failures


def summarise(suite: str, counts: dict, outcomes: dict[str, str], failures: list[Failure]) -> dict:
    """The part of a report that the lockfile keeps: counts and names, nothing that varies between runs."""
    skipped = sorted(module for module, outcome in outcomes.items() if outcome.startswith("skipped"))
    failed = sorted({failure.module for failure in failures})
    return {
        "suite": suite,
        "tests": counts,
        "modules": {"run": len(outcomes), "passed": len(outcomes) - len(skipped) - len(failed),
                    "failed": failed, "skipped": skipped},
        "known_failures": sorted(failure.test for failure in failures if failure.known),
        "unexpected_failures": sorted(failure.test for failure in failures if not failure.known),
        "passed": not any(not failure.known for failure in failures),
    }


class TestRun:
    """One suite on one artifact; each method is one step.

    A run's results (regrtest's JUnit XML and output) are a store product named
    by what determines them: the artifact's and the source's hashes, the build
    python, the toolchain image (the runner), the tests run and regrtest's
    options. Asked again for the same, `invoke test` reports what that run
    found (`rerun` runs it again); the judging against known failures is done
    every time, from the recipe as it is now."""

    def __init__(self, build: Build, recipes: Recipes, suite: str, jobs: int | None = None, rerun: bool = False):
        self.build, self.recipes, self.suite, self.rerun = build, recipes, suite, rerun
        self.plan: Plan = build.plan
        self.jobs = jobs or os.cpu_count() or 1
        self.work = build.workspace.build_dir / "tests" / f"{self.plan.artifact_name}-{suite}"

    def stage(self, result: BuildResult, tests: list[str]) -> Stage:
        """The run as a stage: its identity covers the artifacts (by sha256), the source and build python it
        runs regrtest from, the runner's image and regrtest's whole command line (tests, options, workers)."""
        stages, driver = self.build.stages(), self.build.driver
        artifacts = [result.artifact, *filter(Path.is_file, [result.artifact.with_name(debug_artifact_name(result.artifact.name))])]
        return Stage(
            f"test-{self.suite}", f"tests-{self.suite}-{self.plan.artifact_name}", self.build.stage_images()[1].id,
            (Phase(f"test-{self.suite}", tuple(self.command(tests)), WORK),), (("HOME", WORK),),
            (ProductInput(CONTAINER_SOURCE, stages.source), ProductInput(driver.path(driver.build_python_dir), stages.build_python),
             *(FileInput.of(f"{ARTIFACTS}/{path.name}", path) for path in artifacts),
             *self.build.target.runner_inputs(self.build)),
            WORK, ("regrtest.log", "run.json"),
        )

    def run(self) -> dict:
        result = self.build.run()  # found in the store when it is built: a no-op
        products = self.build.products()
        present, absent = suite_tests(self.recipes, self.suite, products.source.path)
        present, not_contained = flavour_tests(self.plan, present, products.source.path)
        stage = self.stage(result, present)
        reporter, executor = self.build.reporter, self.build.executor
        with reporter.phase(f"test {self.suite}",
                            f"{len(present) or 'all'} test modules, {self.build.target.test_runner(self.jobs)}") as phase:
            def run_suite(directory: Path, log_dir: Path) -> dict:
                executor.remove_leftovers(self.work)  # of a killed `invoke test`
                self.prepare(result, products.source.path)
                (test,) = stage.phases
                log = log_dir / f"{test.name}.log"
                # Run in the work directory (the artifact unpacked with its tests), not in the product's: the
                # product keeps regrtest's results only.
                status = executor.run_phase(stage.image, test.name, list(test.command), executor.binds(stage, self.work),
                                            stage.environment_dict, log, workdir=test.workdir, check=False)
                if (self.work / "junit.xml").is_file():
                    shutil.copy(self.work / "junit.xml", directory / "junit.xml")
                shutil.copy(log, directory / "regrtest.log")
                (directory / "run.json").write_text(json.dumps({"exit_status": status, "jobs": self.jobs}) + "\n")
                if "Tests result:" not in (directory / "regrtest.log").read_text(errors="replace"):  # it broke down
                    raise BuildError(f"regrtest exited with status {status} and wrote no results; its output is in "
                                     f"{display_path(log_dir)}. Last lines:\n"
                                     + "\n".join((directory / "regrtest.log").read_text(errors="replace").splitlines()[-15:]))
                return {}

            product = self.build.store.realise(stage, run_suite, fresh=self.rerun)
            report = self.report(result, product.path, absent, not_contained)
            phase.outcome = ("reused the results of " + display_path(product.path) + ": " if product.reused else "") \
                + self.outcome(report)
        self.publish(result, report, product.path)
        return report

    def prepare(self, result: BuildResult, source: Path) -> None:
        """The work directory: the artifact unpacked at artifact/, with the release's Lib/test where its
        interpreter finds it (the target's add_tests), and regrtest's temporary directory."""
        if self.work.exists():
            shutil.rmtree(self.work)
        tree = self.work / "artifact"
        safe_extract(result.artifact, tree, strip_components=1)
        self.build.target.add_tests(self.plan, result.artifact, source, self.work)
        (self.work / "regrtest").mkdir()
        normalise_modes(self.work)
        make_writable_for_container(self.work, recursive=True)  # tests write beside themselves (__pycache__...)

    def command(self, tests: list[str]) -> list[str]:
        source = self.build.products().source.path
        options = [*self.recipes.tests.suites[self.suite].regrtest_options(),
                   "--tempdir", f"{WORK}/regrtest", "--junit-xml", f"{WORK}/junit.xml"]
        return self.build.target.regrtest_command(self.build, source, options, tests, self.jobs, WORK)

    def report(self, result: BuildResult, results: Path, absent: list[str], not_contained=()) -> dict:
        # No JUnit XML when no test case ran at all (each module crashed or was skipped): none to count.
        counts, failing = read_junit(results / "junit.xml") if (results / "junit.xml").is_file() else (ZERO_CASES, [])
        log = (results / "regrtest.log").read_text(encoding="utf-8", errors="replace")
        run = json.loads((results / "run.json").read_text())
        outcomes = module_outcomes(log)
        known = [entry for entry in self.recipes.tests.known_failures
                 if entry.applies(self.plan.python.line, self.plan.target, self.plan.flavour_name)]
        failures = classify(failing, outcomes, known)
        seed = re.search(r"Using random seed:? (\d+)", log)
        return {
            "artifact": self.plan.artifact_name,
            "artifact_sha256": result.lock["outputs"][result.artifact.name]["sha256"],
            "python_wasm_sha256": result.lock["outputs"]["python.wasm"]["sha256"],
            "tests_recipe_sha256": sha256_path(self.recipes.tests_path),
            "runtime": self.build.target.runtime_version(self.plan),
            "regrtest": {"options": [*self.build.target.regrtest_options(self.plan, self.build.products().source.path,
                                                                          run["jobs"]),
                                     *self.recipes.tests.suites[self.suite].regrtest_options()],
                         "exit_status": run["exit_status"],
                         "random_seed": int(seed.group(1)) if seed else None},
            "absent": absent,
            # The suite's tests of modules a flavour does not contain (flavour_tests): not run.
            **({"not_contained": list(not_contained)} if not_contained else {}),
            **summarise(self.suite, counts, outcomes, failures),
            "failures": [failure.as_dict() for failure in failures],
        }

    def outcome(self, report: dict) -> str:
        tests, modules = report["tests"], report["modules"]
        text = (f"{tests['run']} tests in {modules['run']} modules: {tests['passed']} passed, "
                f"{tests['failed'] + tests['errors']} failed, {tests['skipped']} skipped")
        if report["known_failures"]:
            text += f" ({len(report['known_failures'])} known failures)"
        return text

    def publish(self, result: BuildResult, report: dict, results: Path) -> None:
        """The report next to the artifact, its summary into the lockfile; then judge it."""
        dist = self.build.workspace.dist_dir
        path = write_atomically(dist / report_name(self.plan.artifact_name, self.suite),
                                (json.dumps(report, indent=1, sort_keys=True) + "\n").encode())
        record_checksums(dist, [path])
        summary = {key: report[key] for key in ("tests", "modules", "known_failures", "unexpected_failures", "passed")}
        record_test_results(result.lockfile, self.suite, {"tests_recipe_sha256": report["tests_recipe_sha256"], **summary})
        self.build.reporter.info(f"report    {display_path(path)}")
        if not report["passed"]:
            failures = [failure for failure in report["failures"] if not failure["known"]]
            raise BuildError(
                f"{len(failures)} unexpected test failures in the {self.suite} suite of {self.plan.artifact_name}: "
                + ", ".join(f"{failure['test']} ({failure['kind']})" for failure in failures[:20])
                + (" ..." if len(failures) > 20 else "")
                + f". regrtest's output is {display_path(results / 'regrtest.log')}, the report {display_path(path)}. "
                f"A failure that CPython itself has on this platform belongs in {display_path(self.recipes.tests_path)} "
                f"(known_failures, with the reason); anything else is a bug in the build.")
