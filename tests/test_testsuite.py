"""How a regrtest run is read and judged: its JUnit XML, its progress lines, known failures (pure logic; the run
itself is tests/e2e/test_testsuite.py)."""

import pytest

from cpython_wasm.errors import UserError
from cpython_wasm.recipes import suites
from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.recipes.suites import KnownFailure
from cpython_wasm.tools.testsuite import classify, module_outcomes, read_junit, suite_tests, summarise

JUNIT = """<testsuites tests="5" errors="1" failures="1"><testsuite tests="5">
<testcase name="test.test_os.FileTests.test_write" status="run" result="completed" time="0.1" />
<testcase name="test.test_os.FileTests.test_big" status="run" result="completed"><skipped>not enough memory</skipped></testcase>
<testcase name="test.test_os.StatTests.test_stat" status="run" result="completed"><system-out /><failure>AssertionError</failure></testcase>
<testcase name="test.test_sys.SysModuleTest.test_exit" status="run" result="completed"><error>RuntimeError</error></testcase>
<testcase name="test.test_json.test_decode.TestDecode.test_float" status="run" result="completed" />
</testsuite></testsuites>"""

# As regrtest 3.13 prints them (3.11 pads the counter: "[ 5/47]").
LOG = """\
Using random seed: 4188050963
0:00:01 load avg: 1.23 [1/5/1] test_crash worker non-zero exit code (Exit code 134 (SIGABRT))
0:00:02 load avg: 1.23 [ 2/5] test_os failed (1 failure)
0:00:02 load avg: 1.23 [3/5/2] test_sys failed (1 error)
0:00:03 load avg: 1.23 [4/5/2] test_json passed -- running (1): test_io (30.8 sec)
0:00:04 load avg: 1.23 [5/5/2] test_termios skipped
test_termios skipped -- No module named 'termios'
"""


def test_junit_counts_every_case_once(tmp_path):
    (tmp_path / "junit.xml").write_text(JUNIT)
    counts, failing = read_junit(tmp_path / "junit.xml")
    assert counts == {"run": 5, "passed": 2, "failed": 1, "errors": 1, "skipped": 1}
    assert failing == [("test.test_os.StatTests.test_stat", "failure"), ("test.test_sys.SysModuleTest.test_exit", "error")]


def test_module_outcomes_are_the_last_word_of_each_progress_line():
    assert module_outcomes(LOG) == {"test_crash": "worker non-zero exit code (Exit code 134 (SIGABRT))",
                                    "test_os": "failed (1 failure)", "test_sys": "failed (1 error)",
                                    "test_json": "passed", "test_termios": "skipped"}


@pytest.mark.parametrize("entry, test_id, covered", [
    ("test_os", "test.test_os.StatTests.test_stat", True),
    ("test_os", "test_os", True),
    ("test_os", "test.test_ossaudiodev.Tests.test_x", False),
    ("test.test_os.StatTests", "test.test_os.StatTests.test_stat", True),
    ("test.test_os.StatTests.test_stat", "test.test_os.StatTests.test_stat", True),
    ("test.test_os.StatTests.test_st", "test.test_os.StatTests.test_stat", False),
])
def test_a_known_failure_covers_its_module_or_its_id_prefix(entry, test_id, covered):
    assert KnownFailure(test=entry, reason="r").covers(test_id) is covered


def test_known_failures_narrow_to_lines_and_targets():
    entry = KnownFailure(test="test_os", reason="r", lines=("3.13",), targets=("wasi",))
    assert entry.applies("3.13", "wasi") and not entry.applies("3.11", "wasi") and not entry.applies("3.13", "emscripten")


def test_a_known_failure_of_a_flavour_applies_to_that_flavour_only():
    flavoured = KnownFailure(test="test_codecs", reason="r", flavours=("minimal",))
    assert flavoured.applies("3.13", "wasi", "minimal")
    assert not flavoured.applies("3.13", "wasi") and not flavoured.applies("3.13", "wasi", "snapshot")
    assert KnownFailure(test="test_codecs", reason="r").applies("3.13", "wasi", "minimal")  # no flavours: all builds
    with pytest.raises(ValueError):
        KnownFailure(test="test_codecs", reason="r", flavours=("tiny",))


def test_failures_are_cases_and_the_modules_that_failed_without_a_case(tmp_path):
    (tmp_path / "junit.xml").write_text(JUNIT)
    counts, failing = read_junit(tmp_path / "junit.xml")
    outcomes = module_outcomes(LOG)
    known = [KnownFailure(test="test.test_os.StatTests", reason="WASI's stat has no st_blocks")]
    failures = classify(failing, outcomes, known)
    assert [(f.test, f.kind, f.known is not None) for f in failures] == [
        ("test.test_os.StatTests.test_stat", "failure", True),
        ("test.test_sys.SysModuleTest.test_exit", "error", False),
        ("test_crash", "worker non-zero exit code (Exit code 134 (SIGABRT))", False)]
    summary = summarise("fast", counts, outcomes, failures)
    assert summary["known_failures"] == ["test.test_os.StatTests.test_stat"]
    assert summary["unexpected_failures"] == ["test.test_sys.SysModuleTest.test_exit", "test_crash"]
    assert summary["modules"] == {"run": 5, "passed": 1, "failed": ["test_crash", "test_os", "test_sys"],
                                  "skipped": ["test_termios"]}
    assert summary["passed"] is False
    everything_known = classify(failing, outcomes, [*known, KnownFailure(test="test_sys", reason="r"),
                                                    KnownFailure(test="test_crash", reason="r")])
    assert summarise("fast", counts, outcomes, everything_known)["passed"] is True


def test_a_suite_lists_what_the_release_has_and_what_it_lacks(tmp_path):
    (tmp_path / "Lib" / "test" / "test_importlib").mkdir(parents=True)
    (tmp_path / "Lib" / "test" / "test_json.py").write_text("")
    present, absent = suite_tests(Recipes(), "fast", tmp_path)
    assert present == ["test_json", "test_importlib"]
    assert "test_str" in absent and "test_unicode" in absent


def test_an_unknown_suite_names_the_ones_there_are(tmp_path):
    with pytest.raises(UserError, match=r"no test suite 'nightly'.*fast, full"):
        suite_tests(Recipes(), "nightly", tmp_path)


def test_the_fast_suite_takes_the_cpu_heavy_tests_away_and_names_only_regrtests_resources():
    known = Recipes().tests.suites
    assert known["fast"].regrtest_options() == ["--use=-cpu"] and known["full"].regrtest_options() == []
    assert suites.TestSuite(description="x", tests=(), without_resources=("cpu", "tzdata")).regrtest_options() == [
        "--use=-cpu,-tzdata"]
    for resource in ("all", "-cpu", "cpu,network", "x;rm", ""):
        with pytest.raises(ValueError):
            suites.TestSuite(description="x", tests=(), without_resources=(resource,))


def test_the_modules_of_a_test_package_are_named_as_regrtest_names_them():
    outcomes = module_outcomes("0:00:17 load avg: 2.25 [ 17/480] test.test_asyncio.test_locks failed (1 failure)\n"
                               "0:00:18 load avg: 2.25 [ 18/480] test_os passed\n")
    assert outcomes == {"test.test_asyncio.test_locks": "failed (1 failure)", "test_os": "passed"}
    failures = classify([("test.test_asyncio.test_locks.LockTests.test_acquire", "failure")], outcomes, [])
    assert [(f.test, f.module) for f in failures] == [("test.test_asyncio.test_locks.LockTests.test_acquire",
                                                       "test.test_asyncio.test_locks")]
