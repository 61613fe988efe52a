"""The command line as a user meets it: bad input gets one clear paragraph,
a non-zero exit and no traceback."""

import docker.errors
import invoke as pyinvoke
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from invoke import Collection, Program

import tasks
from cpython_wasm import cli, usage
from cpython_wasm.errors import UserError
from cpython_wasm.recipes.plan import Recipes, host_arch
from cpython_wasm.recipes.schema import PYTHON_SELECTION
from cpython_wasm.tools import browser
from cpython_wasm.tools.shell import UNMOUNTABLE, check_mountable
from tests.helpers import PROJECT_ROOT, invoke
from tests.synthetic import FILES, NAME, pack


def test_the_tasks_are_listed():
    listing = invoke("--list", check=True).stdout
    for task in ("build", "render", "smoke"):
        assert f"\n  {task} " in listing


@pytest.mark.parametrize("args, expected", [
    (["--python", "3.9"], "no recipe for CPython 3.9"),
    (["--python", "3.13", "--sdk", "99"], "not built with WASI SDK 99"),
    (["--python", "3.13", "--sdk", "25", "--provider", "homebrew"], "Provider 'homebrew' is unknown"),
    (["--python", "3.13", "--sdk", "26"], "wasi-libc issue 617"),
    (["--python", "3.13", "--sdk", "25", "--provider", "debian", "--mirror", "https://example.org/m"], "is a URL"),
    (["--python", "3.13", "--sdk", "25", "--provider", "debian", "--debian-mirror", "ftp://example.org/debian"],
     "--debian-mirror: expected an http:// or https:// URL"),
    (["--python", ""], "--python '' is not a CPython version: give a line, X.Y"),
    (["--python", "3.13", "--provider", ""], "Provider '' is unknown"),
])
def test_bad_build_requests_are_explained(tmp_path, args, expected):
    result = invoke("build", *args, "--dist-dir", str(tmp_path / "dist"), "--lock-dir", str(tmp_path / "locks"),
                    "--build-dir", str(tmp_path / "build"))
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "dist").exists() and not (tmp_path / "locks").exists()
    if "--mirror" not in args and "--debian-mirror" not in args:
        # The nearest builds, not all of them: one short paragraph.
        assert "Nearest supported builds: --python " in result.stderr and "`invoke matrix` lists all" in result.stderr
        assert result.stderr.count("--python ") <= 4 and len(result.stderr) < 800


def test_the_nearest_supported_builds_share_most_of_the_selection():
    recipes = Recipes()
    latest = recipes.cpython["3.13"][1].latest.version
    with pytest.raises(UserError) as refused:
        recipes.resolve("3.13", 99, "release")
    nearest = str(refused.value).split("Nearest supported builds: ")[1].split(". ")[0].split("; ")
    official = recipes.resolve("3.13").sdk
    assert nearest[0] == f"--python {latest} --sdk {official} --provider release"  # the official pairing first
    assert len(nearest) == 3 and all(f"--python {latest} --sdk " in build and "release" in build for build in nearest)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=12) | st.from_regex(r"[0-9.]{0,8}", fullmatch=True))
def test_a_python_that_is_not_a_version_is_refused_with_the_grammar(python):
    assume(not PYTHON_SELECTION.fullmatch(python))
    with pytest.raises(UserError, match=r"is not a CPython version: give a line, X\.Y .*Nearest supported builds"):
        Recipes().resolve(python)


def test_without_a_docker_engine_the_error_names_the_script(tmp_path):
    result = invoke("build", "--python", "3.13", "--sdk", "25", "--provider", "debian",
                    "--build-dir", str(tmp_path / "build"), "--cache-dir", str(tmp_path / "cache"),
                    env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    assert result.returncode == 2
    assert "No Docker engine answers" in result.stderr and "scripts/ensure-docker" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cache" / "sha256").exists() or not any((tmp_path / "cache" / "sha256").iterdir())


def test_a_request_the_engine_refuses_outside_a_phase_is_one_paragraph_and_status_1(capsys):
    def refused(reporter):
        raise docker.errors.APIError("409 Client Error: Conflict", explanation="removal of container 4f is in use")

    with pytest.raises(pyinvoke.Exit) as exit:
        cli.run(refused)
    assert exit.value.code == 1
    said = capsys.readouterr()
    message = " ".join((said.out + said.err).split())
    assert "Docker engine did not do what this command asked" in message and "removal of container 4f" in message
    assert "unchanged" in message and "Traceback" not in message


def test_render_prints_the_dockerfile_on_stdout():
    result = invoke("render", "--python", "3.13", "--sdk", "25", "--provider", "debian", check=True)
    golden = PROJECT_ROOT / "tests" / "golden" / "3.13-wasi_sdk-25-debian.toolchain.Dockerfile"
    if host_arch() == "x86_64":  # the golden file is rendered for x86_64; other hosts pin another wheel
        assert result.stdout == golden.read_text()
    assert result.stdout.startswith("# Rendered from containers/wasi-sdk-debian.Dockerfile.j2")
    assert "# image cpython-wasm/wasi-sdk-25-debian:" in result.stderr


def test_render_rejects_an_unknown_image():
    result = invoke("render", "--python", "3.13", "--sdk", "25", "--provider", "debian", "--image", "bogus")
    assert result.returncode == 2 and "choose one of: toolchain, native" in result.stderr


def test_smoke_without_an_artifact_says_how_to_get_one(tmp_path):
    result = invoke("smoke", "--python", "3.13", "--sdk", "25", "--provider", "debian", "--dist-dir", str(tmp_path))
    assert result.returncode == 2
    assert "No artifact at" in result.stderr and "invoke build" in result.stderr


@pytest.mark.parametrize("args, expected", [
    (["--target", "emscripten", "--sdk", "3.1.69"], "Emscripten builds have none yet"),
    (["--sdk", "25"], "No devkit of python-3.13.5-wasi_sdk-25-debian in"),
    (["--sdk", "25", "--workdir", "{tmp}/a,b"], "has a comma, a double quote or a control character"),
    (["--sdk", "25", "--workdir", "{tmp}/missing"], "is not a directory"),
])
def test_shell_needs_a_built_wasi_devkit_and_a_mountable_directory(tmp_path, args, expected):
    (tmp_path / "a,b").mkdir()
    result = invoke("shell", "--python", "3.13.5", "--provider", "debian", "--dist-dir", tmp_path / "dist",
                    "--lock-dir", tmp_path / "locks", *(arg.format(tmp=tmp_path) for arg in args), "--command", "true")
    assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(codec="utf-8", exclude_characters="/\0"), min_size=1, max_size=30))
def test_a_workdir_is_mounted_only_if_a_bind_mount_can_name_it(tmp_path, name):
    """Any directory name: refused (one paragraph) exactly when it has what `--mount` cannot carry."""
    assume(name not in (".", ".."))
    directory = tmp_path / name
    directory.mkdir(exist_ok=True)
    if UNMOUNTABLE & set(str(directory)):
        with pytest.raises(UserError, match="a bind mount cannot name"):
            check_mountable(directory, "--workdir")
    else:
        check_mountable(directory, "--workdir")


def test_smoke_in_the_browser_is_for_emscripten_artifacts_only(tmp_path):
    pack(tmp_path, FILES)
    result = invoke("smoke", "--artifact", tmp_path / "dist" / f"{NAME}.tar.gz", "--browser")
    assert result.returncode == 2
    assert "--browser runs an Emscripten artifact in Chromium" in result.stderr and "built for WASI" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["python-3.13.5-emscripten-3.1.69-debian", "python-3.13.5-wasi_sdk-25-debian"])
def test_smoke_of_an_artifact_needs_its_lockfile(tmp_path, name):
    """Its runtime (Node, the wasmtime CLI) is the toolchain image's, which the lockfile names."""
    artifact = tmp_path / f"{name}.tar.gz"
    artifact.write_bytes(b"")
    result = invoke("smoke", "--artifact", artifact, "--lock-dir", tmp_path / "lockfiles")
    assert result.returncode == 2
    assert f"{name}.json does not exist" in result.stderr and "Traceback" not in result.stderr


def test_the_browser_smoke_run_says_when_chromium_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(browser, "CHROMIUM", str(tmp_path / "no-chromium"))
    with pytest.raises(UserError, match="Chromium is not installed at .*apt-get install chromium"):
        browser.run_in_chromium(tmp_path, ["-c", "pass"])
    assert not (tmp_path / "smoke.html").exists()  # nothing written before the check


@pytest.mark.parametrize("option", ["--build-dir", "--dist-dir", "--lock-dir", "--cache-dir"])
def test_a_directory_option_that_names_a_file_is_refused(tmp_path, option):
    occupied = tmp_path / "occupied"
    occupied.write_text("not a directory")
    for value in (occupied, occupied / "below"):
        result = invoke("build", "--python", "3.13", "--sdk", "25", "--provider", "debian", option, value)
        assert result.returncode == 2, result.stderr
        assert f"{option} {value}" in result.stderr and "a file, not a directory" in result.stderr
        assert "Traceback" not in result.stderr
    assert occupied.read_text() == "not a directory"


@pytest.mark.parametrize("task, option, value", [
    ("test", "--jobs", "two"), ("test", "--jobs", "0"), ("bench", "--rounds", "-1"), ("bench", "--values", "1.5"),
    ("bench", "--startup-runs", "many"),
])
def test_counts_are_whole_numbers(tmp_path, task, option, value):
    result = invoke(task, "--python", "3.13", "--sdk", "25", "--provider", "debian", f"{option}={value}",
                    "--build-dir", tmp_path / "build")
    assert result.returncode == 2, result.stderr
    assert f"{option} {value!r} is not a count" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "build").exists()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12) | st.integers(-10, 10**7).map(str) | st.integers(0, 99).map(lambda n: f"0{n}"))
def test_a_count_and_a_port_are_plain_whole_numbers_in_range(value):
    text = value.strip()
    plain = text.isascii() and text.isdigit() and not (len(text) > 1 and text.startswith("0"))
    for option, lowest, highest in (("--jobs", 1, cli.MAX_COUNT), ("--port", 0, 65535)):
        expected = int(text) if plain and lowest <= int(text) <= highest else None
        assert cli.whole_number(value, lowest, highest) == expected, (option, value)
    if not plain or int(text) < 1 or int(text) > cli.MAX_COUNT:
        with pytest.raises(UserError, match=r"--jobs .* is not a count: pass a whole number from 1 to 1,000,000\."):
            cli.count("--jobs", value)
    if not plain or int(text) > 65535:
        with pytest.raises(UserError, match=r"--port .* is not a TCP port"):
            cli.serve(None, "/nonexistent", value)


def test_fetch_refuses_a_mirror_entry_that_is_not_a_file(tmp_path):
    from cpython_wasm.recipes.plan import Recipes

    source = Recipes().resolve("3.13.5", 25, "debian").release.source
    (tmp_path / "mirror" / "sha256" / source.sha256).mkdir(parents=True)
    result = invoke("fetch", "--python", "3.13.5", "--sdk", "25", "--provider", "debian", "--mirror", tmp_path / "mirror")
    assert result.returncode == 2, result.stderr
    assert "exists and is not a regular file" in result.stderr and "Traceback" not in result.stderr


TASKS = sorted(Collection.from_module(tasks).task_names)


@pytest.mark.parametrize("args, expected", [
    (["build", "--pyhton", "3.13"], "invoke build has no option --pyhton (did you mean --python?). Its options: "
                                    "--base-image, --build-dir, --cache-dir, --configure-arg, --debian-mirror"),
    (["build", "--python"], "invoke build: --python needs a value (`--python VALUE` or `--python=VALUE`). --python: "
                            "X.Y, a CPython line, builds its newest pinned release"),
    (["render", "--python", "3.13", "--image"], "invoke render: --image needs a value"),
    (["build", "3.13"], "invoke build was given '3.13', which is neither one of its options nor a task"),
    (["verify"], "invoke verify needs ARTIFACT, the artifact tarball to verify: `invoke verify ARTIFACT [options]`"),
    (["biuld"], "There is no task 'biuld' (did you mean build?). The tasks: bench, build"),
    (["--pyhton", "3.13", "build"], "invoke has no option --pyhton: a task's options come after the task"),
    (["--help", "biuld"], "There is no task 'biuld'"),
    (["build", "--mirror"], "invoke build: --mirror needs a value"),
    (["matrix", "--mirror", "--json"], "invoke matrix: --mirror needs a value"),
    (["build", "--configure-arg=--with-pydebug", "--configure-arg"], "invoke build: --configure-arg needs a value"),
    # An unknown option where a positional argument is expected, once taken for an artifact or a lockfile.
    (["verify", "--bogus"], "invoke verify has no option --bogus. Its options: --artifact, --lock"),
    (["rebuild", "--bogus"], "invoke rebuild has no option --bogus."),
    (["verify", "--lock-dir"], "invoke verify: --lock-dir needs a value"),
])
def test_a_bad_command_line_is_a_usage_error(args, expected):
    """Exit 2 (what the README promises for a bad option) and one paragraph, before anything runs."""
    result = invoke(*args)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("error: ") and expected in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr


@pytest.mark.parametrize("task", TASKS)
def test_every_task_has_help(task):
    result = invoke(task, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: inv[oke] [--core-opts] {task} ") and "Options:" in result.stdout
    assert result.stderr == ""


def test_the_help_says_what_the_defaults_are_and_which_options_take_values():
    help_text = " ".join(invoke("build", "--help", check=True).stdout.split())
    assert "X.Y, a CPython line, builds its newest pinned release (default: 3.13)" in help_text
    assert "release (default), its official tarball, or debian" in help_text
    assert "--mirror DIR, repeatable:" in help_text and "--configure-arg ARG, repeatable:" in help_text
    assert "-h" not in help_text.split("Options:")[1]  # no short flags: -h is help for every task


def _parse(argv: list[str], capsys) -> tuple[int, str, str, Program]:
    """Parse `invoke ARGV` as the `invoke` command does (usage errors reported), but run no task: the status,
    standard output and error, and the Program (its `tasks`: what the parser gave each task)."""
    program = Program(namespace=Collection.from_module(tasks), binary="invoke")
    usage.report_usage_errors(program)
    program.execute = lambda: None
    try:
        program.run(["invoke", *argv])
        status = 0
    except SystemExit as exit:
        status = exit.code or 0
    output = capsys.readouterr()
    return status, output.out, output.err, program


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("help_flag", ["--help", "-h"])
def test_help_comes_first_even_where_an_argument_is_expected(task, help_flag, capsys):
    """`invoke verify --help` used to verify an artifact named --help: a positional argument, or an option's
    value, took the flag."""
    contexts = Collection.from_module(tasks).to_contexts()
    options = [flag for flag in next(c for c in contexts if c.name == task).flags if flag.startswith("--")]
    for argv in ([task, help_flag], [task, options[0], help_flag]):
        status, stdout, stderr, program = _parse(argv, capsys)
        assert (status, stderr) == (0, ""), argv
        assert stdout.startswith(f"Usage: invoke [--core-opts] {task} [--options]"), argv


REPEATABLE = {"build": ["--mirror", "--configure-arg"], "test": ["--mirror", "--configure-arg"],
              "fetch": ["--mirror"], "matrix": ["--mirror"], "rebuild": ["--mirror"]}
OTHER_OPTIONS = {"build": ["--python", "--sdk", "--cache-dir"], "test": ["--python", "--suite"],
                 "fetch": ["--python", "--recipes"], "matrix": ["--only", "--arch"], "rebuild": ["--output"]}


@st.composite
def command_lines(draw, valueless: bool):
    """`TASK OPTION VALUE ...`: the task's repeatable options, any number of times, among others, once each
    (given twice, invoke refuses them); with `valueless`, one repeatable option somewhere without its value:
    last, or followed by an option (not by `--option=value`, which is taken for its value, as `--with-x` is)."""
    task = draw(st.sampled_from(sorted(REPEATABLE)))
    options = draw(st.permutations(draw(st.lists(st.sampled_from(REPEATABLE[task]), max_size=4)) +
                                   draw(st.lists(st.sampled_from(OTHER_OPTIONS[task]), unique=True))))
    argv = [task, "--lock", "a.json"] if task == "rebuild" else [task]
    for option in options:
        value = draw(st.from_regex(r"[a-z0-9][a-z0-9./]{0,6}", fullmatch=True))
        argv += [f"{option}={value}"] if draw(st.booleans()) else [option, value]
    bare = None
    if valueless:
        bare = draw(st.sampled_from(REPEATABLE[task]))
        argv.insert(draw(st.sampled_from([i for i in range(1, len(argv) + 1) if i == len(argv) or argv[i] in options])),
                    bare)
    return argv, bare


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=command_lines(valueless=True))
def test_a_repeatable_option_without_its_value_is_a_usage_error(command, capsys):
    argv, bare = command
    status, _, stderr, _ = _parse(argv, capsys)
    assert status == 2, (argv, stderr)
    assert f"{bare} needs a value" in stderr


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=command_lines(valueless=False))
def test_repeatable_options_keep_every_value(command, capsys):
    argv, _ = command
    status, _, stderr, program = _parse(argv, capsys)
    assert (status, stderr) == (0, "")
    (context,) = program.tasks
    for option in REPEATABLE[argv[0]]:
        given_values = [token.split("=", 1)[1] if "=" in token else argv[i + 1]
                        for i, token in enumerate(argv) if token == option or token.startswith(option + "=")]
        assert context.args[option[2:]].value == given_values


def test_an_option_after_a_repeatable_one_is_its_value_only_when_it_cannot_be_an_option(capsys):
    status, _, stderr, program = _parse(["build", "--configure-arg", "--with-pydebug", "--configure-arg",
                                         "--mirror=m", "--mirror", "n"], capsys)
    assert (status, stderr) == (0, "")
    (context,) = program.tasks
    assert context.args["configure-arg"].value == ["--with-pydebug", "--mirror=m"]
    assert context.args["mirror"].value == ["n"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(task=st.sampled_from(TASKS), words=st.lists(
    st.text(max_size=10) | st.sampled_from(["--mirror", "--python", "--json", "--lock", "--", "-", "=", "--help"])
    | st.builds("--{}={}".format, st.sampled_from(["mirror", "python", "check", "x"]), st.text(max_size=5)),
    max_size=6))
def test_any_command_line_is_run_or_refused_in_one_paragraph(task, words, capsys):
    status, stdout, stderr, _ = _parse([task, *words], capsys)
    if stderr:
        assert status == 2 and stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    else:
        assert status == 0


@pytest.mark.parametrize("args, expected", [
    (["matrix", "--arch", "bogus", "--no-check"], "--arch 'bogus' is not a host architecture"),
    (["matrix", "--arch", "", "--no-check"], "--arch '' is not a host architecture"),
    (["render", "--recipes", ""], "--recipes '' is not a directory"),
    (["smoke", "--artifact", ""], "--artifact is empty"),
])
def test_an_empty_or_unknown_value_is_never_taken_for_the_default(args, expected):
    result = invoke(*args, env={"DOCKER_HOST": "unix:///nonexistent"})
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_directory_behind_a_loop_of_links_is_refused_in_one_paragraph(tmp_path):
    (tmp_path / "l1").symlink_to(tmp_path / "l2")
    (tmp_path / "l2").symlink_to(tmp_path / "l1")
    result = invoke("build", "--python", "3.13.5", "--sdk", "25", "--provider", "debian", "--dist-dir", tmp_path / "l1" / "x",
                    env={"DOCKER_HOST": "unix:///nonexistent"})
    assert result.returncode == 2 and f"--dist-dir {tmp_path / 'l1' / 'x'}: Symlink loop" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_page_the_artifact_lacks_in_one_paragraph(tmp_path):
    (tmp_path / "index.html").write_text("")
    result = invoke("serve", tmp_path, "--port", "0", "--page", "pyrepl.html", timeout=60)
    assert result.returncode == UserError.exit_code, result.stderr
    assert "--page 'pyrepl.html' is not a page of this artifact, whose pages are index.html" in result.stderr
    assert "Traceback" not in result.stderr and "Serving" not in result.stdout


def test_image_export_without_the_lockfile_says_to_build_first(tmp_path):
    result = invoke("image-export", "--python", "3.13.5", "--sdk", "25", "--provider", "debian",
                    "--dist-dir", str(tmp_path / "dist"), "--lock-dir", str(tmp_path / "locks"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "No lockfile" in result.stderr and "invoke build" in result.stderr
    assert not (tmp_path / "dist").exists()


@pytest.mark.parametrize("name, content, status, expected", [
    ("missing.tar.gz", None, 2, "No image archive at"),
    ("image.tar.gz", b"\x1f\x8b not really gzip", 3, "could not be read as a tarball"),
    ("image.tar", b"", 3, "could not be read as a tarball"),
])
def test_image_import_refuses_what_is_no_archive_of_a_lockfile_before_connecting(tmp_path, name, content, status,
                                                                                  expected):
    archive = tmp_path / name
    if content is not None:
        archive.write_bytes(content)
    # No engine: nothing gets as far as connecting to one.
    result = invoke("image-import", str(archive), env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    assert result.returncode == status, result.stderr
    assert expected in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
    assert "\n\n" not in result.stderr.strip()  # one paragraph


def test_image_import_needs_a_lockfile_to_check_against(tmp_path):
    archive = tmp_path / "image.tar.gz"
    archive.write_bytes(b"")
    result = invoke("image-import", str(archive), "--lock-dir", str(tmp_path))
    assert result.returncode == 2 and "No lockfile in" in result.stderr and "Traceback" not in result.stderr


def test_bench_refuses_a_runtime_the_target_has_not_before_building(tmp_path):
    result = invoke("bench", "--python", "3.13.5", "--sdk", "25", "--provider", "debian", "--runtime", "wasmer",
                    "--build-dir", str(tmp_path / "build"), "--dist-dir", str(tmp_path / "dist"),
                    "--lock-dir", str(tmp_path / "locks"), env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    assert result.returncode == UserError.exit_code, result.stderr
    assert "--runtime 'wasmer': WASI artifacts are benchmarked under these runtimes only: wasmtime," in " ".join(
        result.stderr.split()) and "Traceback" not in result.stderr
    assert not (tmp_path / "dist").exists() and not (tmp_path / "locks").exists()
