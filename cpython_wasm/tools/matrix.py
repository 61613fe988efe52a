"""The support matrix: every pairing the recipes allow, and whether it can be built here.

One row per pinned CPython release × target × allowed toolchain release (WASI
SDK, or emsdk for Emscripten) × provider, for one host architecture.
`buildable` says whether every pinned input can be had now, from the cache, a
mirror or a URL that answers; `missing` names those that cannot (or why the
pairing cannot be built at all), each as "FILE: why" for an input. The JSON form (`invoke matrix --json`) is what CI workflows use as
their build matrix: each row's python, target, sdk and provider are `invoke
build`'s options.

Many pairings share inputs, and a server may accept a connection and never
answer: each URL is asked once, all at once, and whatever has not answered by
the deadline is "unreachable (timed out)".
"""

import queue
import threading
import time

import requests

from cpython_wasm.errors import UserError
from cpython_wasm.inputs.fetch import Fetcher, describe_failure
from cpython_wasm.recipes.pins import PinnedFile
from cpython_wasm.recipes.plan import Recipes

CHECK_DEADLINE_SECONDS = 20  # for all the URLs together: what `invoke matrix` may wait for the network
TIMED_OUT = "unreachable (timed out)"

SELECTIONS = {
    "all": lambda combination: True,
    "latest": lambda combination: combination.latest,  # what `--python X.Y` builds: CI's matrix
    # PEP 11's pairing for the newest release of each line: what a release publishes.
    "official": lambda combination: combination.official and combination.latest,
}


# The host architectures the release providers' tarballs are pinned for (Debian's providers build on both).
ARCHES = ("x86_64", "aarch64")


def matrix_rows(recipes: Recipes, arch: str, fetcher: Fetcher | None, only: str = "all",
                deadline: float = CHECK_DEADLINE_SECONDS) -> list[dict]:
    """The rows; with no fetcher, availability is not checked (buildable is None); with one, the network is
    waited for `deadline` seconds at most."""
    if only not in SELECTIONS:
        raise UserError(f"--only {only!r} is not a selection of the matrix; choose one of: {', '.join(SELECTIONS)}.")
    if arch not in ARCHES:
        raise UserError(f"--arch {arch!r} is not a host architecture the recipes pin toolchains for; choose one of: "
                        f"{', '.join(ARCHES)} (default: this machine's).")
    rows, checked = [], []
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
        rows.append(row)
        checked.append((row, plan.inputs))
    if fetcher is not None:
        missing = unavailable(fetcher, [pin for _, inputs in checked for pin in inputs], deadline)
        for row, inputs in checked:
            row["missing"] = [missing[pin.sha256] for pin in inputs if pin.sha256 in missing]
            row["buildable"] = not row["missing"]
    return rows


def unavailable(fetcher: Fetcher, pins: list[PinnedFile], deadline: float) -> dict[str, str]:
    """The pins that can be had from no cache, mirror or URL here now, by sha256, each as "FILE: why"."""
    remote = {pin.sha256: pin for pin in pins if fetcher.locate_locally(pin) is None}
    answers = url_answers({url for pin in remote.values() for url in pin.urls}, deadline)
    missing = {}
    for sha256, pin in remote.items():
        reasons = [answers[url] for url in pin.urls]
        if None not in reasons:
            missing[sha256] = f"{pin.file}: {'; '.join(dict.fromkeys(reasons)) or 'no URL, and in no cache or mirror'}"
    return missing


def url_answers(urls: set[str], deadline: float) -> dict[str, str | None]:
    """Whether each URL answers a HEAD request with 200: None if it does, else why not. All are asked at once
    (the recipes have a few dozen); those without an answer `deadline` seconds after the start are TIMED_OUT."""
    answered: queue.SimpleQueue = queue.SimpleQueue()

    def ask(url: str) -> None:
        with requests.Session() as session:  # one each: requests does not promise that a session can be shared
            answered.put((url, _head(session, url, deadline)))

    # A thread per URL, so that a host that never answers holds up no other; daemon threads, not an executor's,
    # which the interpreter waits for before it exits (a server that sends a byte now and then outlasts any
    # timeout).
    for url in urls:
        threading.Thread(target=ask, args=(url,), name="matrix-check", daemon=True).start()
    answers: dict[str, str | None] = dict.fromkeys(urls, TIMED_OUT)
    end = time.monotonic() + deadline
    for _ in urls:
        try:
            url, answer = answered.get(timeout=max(0.0, end - time.monotonic()))
        except queue.Empty:
            break
        answers[url] = answer
    return answers


def _head(session: requests.Session, url: str, timeout: float) -> str | None:
    try:
        with session.head(url, timeout=(timeout, timeout), allow_redirects=True) as response:
            return None if response.status_code == 200 else f"HTTP {response.status_code}"
    except requests.Timeout:
        return TIMED_OUT
    except requests.RequestException as error:
        return f"unreachable ({describe_failure(error)})"
