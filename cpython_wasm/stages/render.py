"""Rendering: Jinja2 templates under containers/ become Dockerfiles.

StrictUndefined makes a value the template needs but was not given an error,
never an empty string silently baked into an image.

A value must never become an instruction or a command. The recipes'
grammars (grammar.py) keep their values plain when they are loaded; rendering
checks again, whatever a value's origin:

- every value is one line of printable text (the `finalize` hook): a line
  break would start a new Dockerfile instruction;
- every value takes the filter for where the template writes it:
    sh         a word of a RUN line, quoted for the shell; a word the shell
               reads as it is (every value of the committed recipes, such as
               Debian's 1:2.3~rc1+dfsg-1) is left unchanged, so the
               Dockerfiles and the image tags hashed from them do not change
    in_quotes  text between double quotes (a LABEL, a quoted RUN argument):
               refused if it holds a character that ends, escapes or expands
               inside them
    word       a word of FROM, COPY or ENV, which Docker splits and expands
               itself: refused unless it is such a plain word
  A word is an operand, never an option: sh and word refuse a leading `-`
  (quoting would not stop `apt-get install -oDPkg::Pre-Invoke::=...` or
  `COPY --from=...`). A comment line needs none: only a line break could end it.
"""

import re
import shlex

import jinja2

from cpython_wasm.errors import UserError
from cpython_wasm.paths import CONTAINERS_DIR
from cpython_wasm.recipes.grammar import NOT_IN_QUOTES


class UnsafeValue(ValueError):
    """A value that would change a rendered Dockerfile's instructions or commands."""


# Characters of a word that the shell reads as it is: shlex.quote's, and `~`, which Debian versions hold
# (0.0~git20241209.574b88d-2). A tilde is literal except at the start of a word and, in assignments
# (and bash's assignment-like words), after `=` or `:`: there the word is quoted.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9@%+=:,./_-][A-Za-z0-9@%+=:,./_~-]*", re.ASCII)
_TILDE_EXPANDED = re.compile(r"[=:]~")


def is_plain_word(text: str) -> bool:
    return bool(_PLAIN_WORD.fullmatch(text)) and not _TILDE_EXPANDED.search(text)


def _operand(value) -> str:
    text = str(value)
    if text.startswith("-"):
        raise UnsafeValue(f"{text!r} is an argument and starts with '-', so a command would read it as an option")
    return text


def shell_word(value) -> str:
    """`value` as one word of a shell command: unchanged if the shell reads it as it is, else single-quoted."""
    text = _operand(value)
    return text if is_plain_word(text) else shlex.quote(text)


def in_quotes(value) -> str:
    """`value` for the inside of a double-quoted string, in a Dockerfile or a shell command."""
    text = str(value)
    if any(character in NOT_IN_QUOTES for character in text):
        raise UnsafeValue(f"{text!r} is written between double quotes and holds one of {' '.join(NOT_IN_QUOTES)}")
    return text


def dockerfile_word(value) -> str:
    """`value` as one word of a Dockerfile instruction other than RUN (FROM, COPY, ENV)."""
    text = _operand(value)
    if not is_plain_word(text):
        raise UnsafeValue(f"{text!r} is a word of a Dockerfile instruction and holds more than letters, digits "
                          f"and @ % + = : , . / _ ~ -")
    return text


def one_line(value):
    """Jinja2's finalize hook: every value rendered is one line of printable text, or rendering stops."""
    if not str(value).isprintable():  # str() of an Undefined raises: StrictUndefined holds here too
        raise UnsafeValue(f"{str(value)!r} holds a line break or another control character")
    return value


_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(CONTAINERS_DIR),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,  # Dockerfiles, not HTML
    finalize=one_line,
)
_environment.filters.update(sh=shell_word, in_quotes=in_quotes, word=dockerfile_word)


def render(template: str, **values) -> str:
    try:
        return _environment.get_template(template).render(**values)
    except UnsafeValue as error:
        raise UserError(
            f"containers/{template} cannot be rendered: {error}, which could change the Dockerfile's instructions "
            f"or commands. Recipe values are data: give this one the form its recipe key documents "
            f"(cpython_wasm/recipes/grammar.py) and run again."
        ) from None
