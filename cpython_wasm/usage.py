"""Usage errors: a command line invoke's parser refuses, reported as one paragraph with exit status 2.

A bad command line (an unknown option, an option without its value) is found by invoke's parser before any
task runs; invoke's Program reports it with exit status 1, the status of a failed build, and a terse message.
The console script `invoke` runs invoke.main.program, which imports tasks.py before it parses the tasks'
options: tasks.py then calls report_usage_errors, which wraps that Program's two parsing steps so that a
bad command line gets one paragraph (what was wrong, what the task takes) and UserError's status, 2.
"""

import ast
import difflib
import re
from typing import NoReturn

import invoke

from cpython_wasm.errors import UserError
from cpython_wasm.progress import Reporter

HELP_FLAGS = ("--help", "-h")


def report_usage_errors(program: invoke.Program | None = None) -> None:
    """Make `program` (default: the one of the `invoke` command) report command-line errors as usage errors."""
    if program is None:
        from invoke.main import program  # the Program of the `invoke` console script
    if "parse_tasks" in vars(program):  # already wrapped (tasks.py imported twice)
        return
    parse_tasks, parse_cleanup = program.parse_tasks, program.parse_cleanup

    def checked_parse_tasks() -> None:
        try:
            parse_tasks()
        except invoke.ParseError as error:
            _usage_error(usage_message(error, program.collection))
        if not _asks_for_help(program):
            without_value = _repeatable_option_without_value(program)
            if without_value is not None:
                _usage_error(_needs_a_value(*without_value))
            unknown = _option_taken_as_an_argument(program)
            if unknown is not None:
                _usage_error(_unknown_in_task(*unknown))

    def checked_parse_cleanup() -> None:  # `invoke --help TASK` with an unknown TASK
        try:
            parse_cleanup()
        except invoke.ParseError as error:
            _usage_error(usage_message(error, program.collection))

    program.parse_tasks, program.parse_cleanup = checked_parse_tasks, checked_parse_cleanup


def _usage_error(message: str) -> NoReturn:
    Reporter().error(message)
    raise invoke.Exit(code=UserError.exit_code)


def _asks_for_help(program: invoke.Program) -> bool:
    """`invoke verify --help`: invoke's parser takes --help for the value of the task's positional argument (or of
    the option before it); read it as what it is, a request for the task's help, which invoke prints next."""
    for context in program.tasks:
        for argument in context.args.values():
            values = argument.value if argument.kind is list else [argument.value]
            if any(value in HELP_FLAGS for value in values or ()):
                program.args.help.value = context.name
                return True
    return False


def _option_taken_as_an_argument(program: invoke.Program):
    """The task context and token of an unknown option that invoke's parser gave a positional argument as its
    value (`invoke verify --bogus` would look for an artifact named --bogus); a path that starts with '-' is
    written ./-name."""
    for context in program.tasks:
        for argument in context.positional_args:
            if isinstance(argument.value, str) and argument.value.startswith("-"):
                return context, argument.value
    return None


def _repeatable_option_without_value(program: invoke.Program):
    """The task context and name of a repeatable option (--mirror DIR) given without its value, if any: invoke's
    parser keeps nothing for it and says nothing. As the parser reads the line, such an option has no value when
    it is last or followed by one of its task's options (anything else is its value, `--configure-arg --with-x`)."""
    tokens = program.core.unparsed
    tokens = tokens[:tokens.index("--")] if "--" in tokens else tokens  # after `--`: not options
    for context in program.tasks:
        repeatable = {"--" + name: name for name, argument in context.args.items() if argument.kind is list}
        options = set(context.flags) | set(context.inverse_flags)
        for token, following in zip(tokens, [*tokens[1:], None], strict=True):
            if token in repeatable and (following is None or following in options):
                return context, repeatable[token]
    return None


def usage_message(error: invoke.ParseError, collection: invoke.Collection) -> str:
    """One paragraph for a command line invoke's parser refused: what was wrong, what is possible, what to do."""
    context = error.context if error.context is not None and error.context.name else None
    text = str(error)
    if unknown := re.fullmatch(r"No idea what (.+) is!", text):
        token = ast.literal_eval(unknown[1])
        return _unknown_in_task(context, token) if context else _unknown_task(collection, token)
    text = _shown(text)
    if without_value := re.fullmatch(r"Flag <Argument: ([\w-]+).*> needed value and was not given one!", text):
        return _needs_a_value(context, without_value[1])
    if missing := re.fullmatch(r"'.+' did not receive required positional arguments: (.+)", text):
        return _needs_arguments(context, [ast.literal_eval(name) for name in missing[1].split(", ")])
    return f"{_command(context)}: {text} {_help_hint(context)}"


def _command(context) -> str:
    return f"invoke {context.name}" if context else "invoke"


def _help_hint(context) -> str:
    return f"`{_command(context)} --help` says what each option means." if context else \
        "`invoke --list` says what each task does."


def _unknown_task(collection: invoke.Collection, token: str) -> str:
    tasks = sorted(collection.task_names)
    if token.startswith("-"):
        return (f"invoke has no option {_shown(token)}: a task's options come after the task, e.g. `invoke build --python "
                f"3.13`. The tasks: {', '.join(tasks)}. {_help_hint(None)}")
    return f"There is no task {token!r}{_did_you_mean(token, tasks)}. The tasks: {', '.join(tasks)}. {_help_hint(None)}"


def _unknown_in_task(context, token: str) -> str:
    command, options = _command(context), _options(context)
    if token.startswith("-"):
        return (f"{command} has no option {_shown(token)}{_did_you_mean(token, options)}. Its options: {', '.join(options)}. "
                f"{_help_hint(context)}")
    return (f"{command} was given {token!r}, which is neither one of its options nor a task: values are given "
            f"after their option's name (`{command} --OPTION VALUE`). Its options: {', '.join(options)}. "
            f"{_help_hint(context)}")


def _needs_a_value(context, name: str) -> str:
    flag, argument = "--" + name.replace("_", "-"), context.args.get(name) if context else None
    meaning = f" {flag}: {argument.help}." if argument is not None and argument.help else ""
    return f"{_command(context)}: {flag} needs a value (`{flag} VALUE` or `{flag}=VALUE`).{meaning} {_help_hint(context)}"


def _needs_arguments(context, names: list[str]) -> str:
    described = "; ".join(f"{name.upper()}, {context.args[name].help or name}" for name in names)
    usage = " ".join(name.upper() for name in names)
    return f"{_command(context)} needs {described}: `{_command(context)} {usage} [options]`. {_help_hint(context)}"


def _options(context) -> list[str]:
    return sorted(flag for flag in context.flags if flag.startswith("--"))


def _shown(text: str) -> str:
    """`text` from the command line as it can be printed: quoted and escaped if it holds control characters."""
    return text if text.isprintable() else repr(text)


def _did_you_mean(word: str, choices: list[str]) -> str:
    nearest = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {nearest[0]}?)" if nearest else ""
