"""recipes/tests.toml: CPython's test suites as `invoke test` runs them, and the failures known on each platform."""

from typing import Literal

from cpython_wasm.recipes.artifacts import FLAVOURS
from cpython_wasm.recipes.grammar import Line, SuiteName, TestName, Text
from cpython_wasm.recipes.pins import Model
from cpython_wasm.recipes.schema import TARGETS

# regrtest's resources (Lib/test/libregrtest/cmdline.py, ALL_RESOURCES and the extra ones): what `-u` names.
REGRTEST_RESOURCES = ("audio", "curses", "largefile", "network", "decimal", "cpu", "subprocess", "urlfetch", "gui",
                      "walltime", "tzdata", "extralargefile")


class TestSuite(Model):
    description: Text
    tests: tuple[TestName, ...]  # test modules; none: every test regrtest finds
    # Resources taken away from what the target's upstream settings enable (`--use=-name`, after them).
    without_resources: tuple[Literal[REGRTEST_RESOURCES], ...] = ()

    def regrtest_options(self) -> list[str]:
        return [f"--use={','.join('-' + name for name in self.without_resources)}"] if self.without_resources else []


class KnownFailure(Model):
    """A failure CPython itself has on a platform: reported, but it does not fail `invoke test`."""

    test: TestName  # a test module (test_x) or a test id, or a prefix of one (test.test_x.Class)
    reason: Text
    lines: tuple[Line, ...] = ()  # CPython lines it applies to (default: all)
    targets: tuple[Literal[TARGETS], ...] = ()  # targets it applies to (default: all)
    flavours: tuple[Literal[FLAVOURS], ...] = ()  # flavours (recipes/flavours/) it applies to only (default: all builds)

    def applies(self, line: str, target: str, flavour: str | None = None) -> bool:
        return ((not self.lines or line in self.lines) and (not self.targets or target in self.targets)
                and (not self.flavours or flavour in self.flavours))

    def covers(self, test_id: str) -> bool:
        """Whether a failing test id (test.test_x.Class.method) or test module (test_x) is this one."""
        pattern = self.test if "." in self.test else f"test.{self.test}"
        return test_id in (self.test, pattern) or test_id.startswith(pattern + ".")


class TestsRecipe(Model):
    suites: dict[SuiteName, TestSuite]
    known_failures: tuple[KnownFailure, ...] = ()
