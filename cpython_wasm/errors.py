"""The errors a user sees.

Every failure a user can cause or meet (bad input, an unreachable URL, a hash
mismatch, a failed compile phase) is raised as one of these, carrying a single
paragraph that says what was wrong, what is supported and what to do.
`cli.run` turns them into that paragraph and an exit status, never a traceback.
"""


class UserError(Exception):
    """The request itself is wrong (unknown version, bad option, malformed recipe).

    Exit status 2: nothing was attempted, nothing was changed.
    """

    exit_code = 2


class FetchError(Exception):
    """An input could not be obtained with the pinned bytes.

    Exit status 3: the cache holds nothing unverified.
    """

    exit_code = 3


class BuildError(Exception):
    """A build phase failed; the message names the phase and its log.

    Exit status 1: earlier outputs in dist/ and lockfiles/ are left as they were.
    """

    exit_code = 1


class DiskFull(BuildError):
    """A file could not be written for want of disk space; the message names it, the space it needs
    and what to do.

    Exit status 1, as for a failed phase: the previous version of the file is unchanged.
    """


def describe_validation_error(error: dict) -> str:
    """One of pydantic's errors as a user reads it: the key, dotted, and what was wrong with it (recipes, lockfiles)."""
    # A key that is not printable text (a newline, a control character) is shown as its repr: one paragraph.
    key = ".".join(str(part) if str(part).isprintable() else repr(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "missing":
        return f"missing key `{key}`"
    if error["type"] == "extra_forbidden":
        return f"unknown key `{key}`"
    if error["type"] == "value_error":  # our own validators already quote the value
        return f"key `{key}`: {error['msg'].removeprefix('Value error, ')}"
    return f"key `{key}`: {error['msg'][0].lower()}{error['msg'][1:]}, got {error['input']!r}"
