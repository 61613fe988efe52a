"""Grammars: what each kind of value in a recipe (or a lockfile, or an option) may hold.

Recipes are reviewed by people as data, and a value must never become code:
not a new Dockerfile instruction, not a shell command, not an apt hook, not a
path outside the tree it names. So every value that reaches a template, a
command line or a path has a strict grammar here, checked when the file is
loaded (the error names the file, the key and what was expected). The
templates quote what they render as well (render.py): two fences, not one.

Each type is a pydantic `Annotated[str, ...]`; its `check_*` function is the
same test for values that come from elsewhere (an option, another file).
"""

import re
from collections.abc import Callable
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

# A value is bounded before a regular expression sees it, so no grammar's matching time grows without bound.
MAX_NAME = 255  # a name, a version, a file name
MAX_TEXT = 1000  # free text, a URL, a configure argument
MAX_SIZE = 2**40  # of a pinned file, in bytes: 1 TiB


def refusal(expected: str, value: str, max_length: int) -> ValueError:
    """The error for a value that is not of its grammar: what was expected, and what it got (or how long it was)."""
    if len(value) > max_length:
        return ValueError(f"expected {expected}, at most {max_length} characters; got {len(value)} characters "
                          f"starting {value[:40]!r}")
    return ValueError(f"expected {expected}, got {value!r}")


def grammar(pattern: str, expected: str, max_length: int = MAX_NAME) -> Callable[[str], str]:
    """A check that `value` matches `pattern` whole (ASCII classes only), raising ValueError("expected ..., got ...")."""
    compiled = re.compile(pattern, re.ASCII)

    def check(value: str) -> str:
        if len(value) > max_length or not compiled.fullmatch(value):
            raise refusal(expected, value, max_length)
        return value

    check.pattern = compiled  # for tests that generate the values a grammar allows
    return check


def _type(check: Callable[[str], str]):
    return Annotated[str, AfterValidator(check)]


# -- hashes, files, URLs, images -----------------------------------------------------------

check_sha256 = grammar(r"[0-9a-f]{64}", "a sha256 (64 lowercase hex digits)", 64)
# An image ID or a layer's diff_id as the engine writes them.
check_content_digest = grammar(r"sha256:[0-9a-f]{64}", "a content digest (sha256: and 64 lowercase hex digits)", 71)
# A commit as upstream names it: abbreviated (7 digits or more) or whole.
check_git_revision = grammar(r"[0-9a-f]{7,40}", "a git commit (7 to 40 lowercase hex digits)", 40)
# The name a pinned file has in build contexts, COPY lines and the cache: one path component that
# is no option, no hidden file, no "..", with no space, quote, glob or `$` for Docker or a shell to read.
check_file_name = grammar(r"[A-Za-z0-9][A-Za-z0-9._+~-]*",
                          "a plain file name (a letter or digit, then letters, digits and . _ + ~ -; no '/')")
check_pinned_image = grammar(r"[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}",
                             "an image pinned by digest, like debian:trixie-slim@sha256:<64 hex digits>")

URL_SCHEMES = ("http", "https")
# RFC 3986's characters: no space, no control character, no quote or backslash (a URL is one argument, one
# line of sources.list, one word of a log), and nothing outside ASCII.
_URL_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+", re.ASCII)


def check_url(value: str) -> str:
    """An http:// or https:// URL with a host: the only URLs recipes, lockfiles and options may name."""
    expected = "an http:// or https:// URL with a host, of RFC 3986's characters"
    if len(value) > MAX_TEXT or not _URL_CHARACTERS.fullmatch(value):
        raise refusal(expected, value, MAX_TEXT)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a port that is no number)
    except ValueError:
        raise refusal(expected, value, MAX_TEXT) from None
    if parts.scheme not in URL_SCHEMES or not parts.hostname:
        raise refusal(expected, value, MAX_TEXT)
    return value


Sha256 = _type(check_sha256)
ContentDigest = _type(check_content_digest)
GitRevision = _type(check_git_revision)
FileName = _type(check_file_name)
PinnedImage = _type(check_pinned_image)
Url = _type(check_url)
Size = Annotated[int, Field(gt=0, le=MAX_SIZE)]  # of a file, in bytes

# -- Debian -----------------------------------------------------------------------------------

# Debian policy 5.6.1 and 5.6.12: a package name is lowercase letters, digits and + . -, at least two
# characters, starting with a letter or digit. A version is [epoch:]upstream_version[-debian_revision]:
# the epoch digits; the upstream version starts with a digit and holds letters, digits and . + ~ (and -
# only when there is a revision); the revision, after the last -, letters, digits and . + ~.
check_debian_package = grammar(r"[a-z0-9][a-z0-9+.-]+", "a Debian package name (lowercase letters, digits and + . -)")
check_debian_version = grammar(
    r"(?:[0-9]+:)?(?:[0-9][A-Za-z0-9.+~-]*-[A-Za-z0-9.+~]+|[0-9][A-Za-z0-9.+~]*)",
    "a Debian package version, [epoch:]upstream_version[-debian_revision] as Debian policy 5.6.12 defines it, "
    "like 1:19.1.7-3+b1 or 0.0~git20241209.574b88d-2",
)
# A suite or codename (trixie, sid, bookworm-backports) and an archive area (main, non-free-firmware).
check_debian_suite = grammar(r"[a-z][a-z0-9.-]*", "a Debian suite or codename, like trixie or sid")
check_debian_component = grammar(r"[a-z][a-z0-9-]*", "an archive area, like main or non-free-firmware")
# mmdebstrap's variants (its manual, --variant).
MmdebstrapVariant = Literal["extract", "custom", "essential", "apt", "required", "minbase", "buildd", "important",
                            "debootstrap", "standard"]

# apt options a base recipe may set (mmdebstrap --aptopt, then apt.conf in the image): only settings whose
# value is data. Others name programs that apt runs (DPkg::Pre-Invoke, APT::Update::Post-Invoke,
# Acquire::http::Proxy-Auto-Detect...): a recipe that set one would run code.
DATA_APT_OPTIONS = ("Acquire::Check-Valid-Until", "Acquire::Check-Date", "Acquire::Max-FutureTime", "Acquire::Retries",
                    "Acquire::Languages", "Acquire::ForceIPv4", "Acquire::ForceIPv6", "Acquire::http::Timeout",
                    "Acquire::https::Timeout", "APT::Install-Recommends", "APT::Install-Suggests")
_APT_OPTION = re.compile(r'([A-Za-z0-9-]+(?:::[A-Za-z0-9-]+)+) "([A-Za-z0-9 ._:/+-]*)"', re.ASCII)


def check_apt_option(value: str) -> str:
    match = _APT_OPTION.fullmatch(value) if len(value) <= MAX_NAME else None
    if match is None or match.group(1).lower() not in {name.lower() for name in DATA_APT_OPTIONS}:
        raise refusal(f'an apt option `NAME "VALUE"` whose NAME is one of {", ".join(DATA_APT_OPTIONS)} (these only '
                      f"set data; ask for another to be added to grammar.DATA_APT_OPTIONS) and whose VALUE holds "
                      f"letters, digits, spaces and . _ : / + -", value, MAX_NAME)
    return value


DebianPackage = _type(check_debian_package)
DebianVersion = _type(check_debian_version)
DebianSuite = _type(check_debian_suite)
DebianComponent = _type(check_debian_component)
AptOption = _type(check_apt_option)

# -- names and versions of this project's recipes ------------------------------------------

# A recipe's name (base, library): part of image names (Docker's grammar for a repository), script names
# (build-<name>.sh) and labels.
check_recipe_name = grammar(r"[a-z0-9]+(?:[._-][a-z0-9]+)*", "a recipe name (lowercase letters and digits, "
                            "separated by single . _ -), like debian-trixie or zlib")
check_arch = grammar(r"[a-z0-9_]+", "a host architecture, like x86_64 or aarch64", 32)
check_line = grammar(r"[0-9]+\.[0-9]+", "a CPython line, like 3.13", 16)
check_emsdk_version = grammar(r"[0-9]+\.[0-9]+\.[0-9]+", "an emsdk version, like 3.1.69", 32)
# An upstream project's version (a library, wasmtime, LLVM): letters, digits and . + ~ _ -, from a digit.
check_version = grammar(r"[0-9][A-Za-z0-9.+~_-]*", "a version, like 1.3.1 or 50.0.1")
check_host_triple = grammar(r"[a-z0-9_]+(?:-[a-z0-9_.]+){1,3}", "a target triple, like wasm32-wasip1", 64)
# A path inside a tree (CPython's Lib/, an sdist): components that are no "..", no hidden file and no option.
_RELATIVE_PATH = r"[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)*"
check_lib_path = grammar(_RELATIVE_PATH, "a path relative to Lib/, like test or dbm/gnu.py")
check_sdist_path = grammar(_RELATIVE_PATH, "a path relative to the sdist's top directory, like src/markupsafe")
check_package_path = grammar(_RELATIVE_PATH, "a path inside an npm package's package/ directory, like lib/xterm.js")
check_member_path = grammar(_RELATIVE_PATH, "a path inside an archive, like wasmtime_cli/wasmtime")
# Python's dotted names (ASCII identifiers): a test as regrtest names it (test_os, or a dotted test id or its
# prefix), a module as `import` names it.
_DOTTED_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
check_test_name = grammar(_DOTTED_NAME, "a test module or test id, like test_os")
check_module_name = grammar(_DOTTED_NAME, "a module name, like markupsafe._speedups", 128)
check_identifier = grammar(r"[A-Za-z_][A-Za-z0-9_]*", "a name without dots, like _decimal", 64)
# The version of a Python project in an artifact's name (+markupsafe-3.0.3): PEP 440's public versions, as
# normalised (no "-" or "+", so the name reads back unambiguously).
check_project_version = grammar(r"[0-9][A-Za-z0-9.]*", "a normalised PEP 440 version, like 3.0.3 or 4.3.0", 64)
check_suite_name = grammar(r"[a-z0-9][a-z0-9_-]*", "a suite name, like fast", 64)
# A package's name on the npm registry, scoped or not (npm's own rules, lowercase, as published today).
check_npm_name = grammar(r"(?:@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*", "an npm package name, like xterm or @xterm/xterm",
                         214)

RecipeName = _type(check_recipe_name)
Arch = _type(check_arch)
Line = _type(check_line)
EmsdkVersion = _type(check_emsdk_version)
Version = _type(check_version)
HostTriple = _type(check_host_triple)
LibPath = _type(check_lib_path)
SdistPath = _type(check_sdist_path)
PackagePath = _type(check_package_path)
MemberPath = _type(check_member_path)
TestName = _type(check_test_name)
ModuleName = _type(check_module_name)
Identifier = _type(check_identifier)
ProjectVersion = _type(check_project_version)
SuiteName = _type(check_suite_name)
NpmName = _type(check_npm_name)
# Numbers are TOML integers, never strings, booleans or floats that pydantic would otherwise convert ("25",
# true, 1e3), and bounded: each reaches a command line, a file name or a lockfile that must read it back.
MAX_COUNT = 99_999
MAX_EPOCH = 2**32 - 1  # a SOURCE_DATE_EPOCH: 2106, where 32-bit unsigned times end (lockfiles hold no more)
Count = Annotated[int, Field(gt=0, le=MAX_COUNT, strict=True)]  # a release number (a WASI SDK's, LLVM's major)
Epoch = Annotated[int, Field(ge=0, le=MAX_EPOCH, strict=True)]  # a SOURCE_DATE_EPOCH

# -- what configure and make read ------------------------------------------------------------

# configure stores its arguments and environment in the Makefile, whose recipes the shell runs: a value
# holds flags, paths and words, separated by spaces, and none of the characters the shell would read
# (no quote, backslash, $, `, ;, |, &, <, >, parentheses, braces, glob, # or newline).
_FLAGS = r"[A-Za-z0-9 _./=+,:@%-]*"
check_flags = grammar(_FLAGS, "flags, paths and words (letters, digits, spaces and _ . / = + , : @ % -)", MAX_TEXT)
check_configure_arg = grammar(
    rf"--[a-z0-9][a-z0-9-]*(?:={_FLAGS})?|[A-Za-z_][A-Za-z0-9_]*={_FLAGS}",
    "a configure argument, --option[=VALUE] or NAME=VALUE, whose value holds letters, digits, spaces and "
    "_ . / = + , : @ % -", MAX_TEXT,
)
check_environment_name = grammar(r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable's name, like CFLAGS", 128)

Flags = _type(check_flags)
ConfigureArg = _type(check_configure_arg)
EnvironmentName = _type(check_environment_name)

# -- free text -----------------------------------------------------------------------------------


def check_text(value: str) -> str:
    """One line of printable text (a reason, a description, where a hash came from)."""
    if len(value) > MAX_TEXT or not value.isprintable():
        raise refusal("one line of printable text (no newline or control character)", value, MAX_TEXT)
    return value


# The characters that end or escape a double-quoted string, or expand inside one, in the shell and in a
# Dockerfile's LABEL: text rendered between double quotes must have none of them.
NOT_IN_QUOTES = '"\\$`'


def check_quotable_text(value: str) -> str:
    """Text rendered between double quotes (a label, a shell argument): one line, none of NOT_IN_QUOTES."""
    if len(value) > MAX_NAME or not value.isprintable() or any(character in NOT_IN_QUOTES for character in value):
        raise refusal(f"one line of printable text without {' '.join(NOT_IN_QUOTES)} (it is written between "
                      f"double quotes)", value, MAX_NAME)
    return value


Text = _type(check_text)
QuotableText = _type(check_quotable_text)
