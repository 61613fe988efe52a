"""The support matrix: every pairing the recipes allow, and whether it can be built here.

One row per pinned CPython release × target × allowed toolchain release (WASI
SDK, or emsdk for Emscripten) × provider, for one host architecture.
`buildable` says whether every pinned input can be had now, from the cache, a
mirror or a URL that answers; `missing` names those that cannot (or why the
pairing cannot be built at all). The JSON form (`invoke matrix --json`) is what CI workflows use as
their build matrix: each row's python, target, sdk and provider are `invoke
build`'s options.
"""

from .drivers import NOT_DRIVEN
from .errors import UserError
from .fetch import Fetcher
from .recipes import Recipes

SELECTIONS = {
    "all": lambda combination: True,
    "latest": lambda combination: combination.latest,  # what `--python X.Y` builds: CI's matrix
    # PEP 11's pairing for the newest release of each line: what a release publishes.
    "official": lambda combination: combination.official and combination.latest,
}


def matrix_rows(recipes: Recipes, arch: str, fetcher: Fetcher | None, only: str = "all") -> list[dict]:
    """The rows; with no fetcher, availability is not checked (buildable is None)."""
    if only not in SELECTIONS:
        raise UserError(f"--only {only!r} is not a selection of the matrix; choose one of: {', '.join(SELECTIONS)}.")
    rows = []
    for combination in filter(SELECTIONS[only], recipes.combinations()):
        row = {
            # sdk as a string for both targets: "25" or "3.1.69" (build.yml's input is a string).
            "python": combination.version, "line": combination.python, "sdk": str(combination.sdk),
            "provider": combination.provider, "target": combination.target, "arch": arch, "official": combination.official,
            "latest": combination.latest, "artifact": None, "buildable": None, "missing": [],
        }
        try:
            plan = recipes.resolve(combination.version, combination.sdk, combination.provider,
                                   combination.target, arch)
        except UserError as error:  # e.g. no official tarball for this architecture
            row.update(buildable=False, missing=[str(error)])
            rows.append(row)
            continue
        row["artifact"] = plan.artifact_name
        helper = plan.support.helper
        if helper in NOT_DRIVEN:
            row.update(buildable=False, missing=[f"{helper} is not driven yet"])
            rows.append(row)
            continue
        if fetcher is not None:
            row["missing"] = [pin.file for pin in plan.inputs if fetcher.locate(pin) is None]
            row["buildable"] = not row["missing"]
        rows.append(row)
    return rows
