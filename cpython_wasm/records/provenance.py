"""Provenance: a SLSA v1 statement of how an artifact was made, from its lockfile.

An in-toto Statement (https://in-toto.io/Statement/v1) whose subject is the
artifact tarball and whose predicate (https://slsa.dev/provenance/v1) says:

    buildDefinition.externalParameters   what was asked for: CPython release,
                                         target, SDK, provider, configure
                                         arguments, the recipe files' sha256
    buildDefinition.internalParameters   what the recipes fixed: SOURCE_DATE_EPOCH,
                                         host architecture, environment, image tags
    buildDefinition.resolvedDependencies every input with its URI and sha256: the
                                         pinned files (source, SDK, libraries,
                                         wheels), the base root filesystem, each
                                         image's build-context files and every
                                         Debian package installed in the images
    runDetails.builder                   this project and its version

It is written from the lockfile alone and holds no timestamps or host paths,
so a rebuild writes the same bytes. It is unsigned: it is what GitHub's
attestation action or sigstore signs.
"""

import json
from importlib.metadata import version

from cpython_wasm.recipes.artifacts import COMPANION_SUFFIXES, companion_name
from cpython_wasm.recipes.plan import TOOLCHAINS
from cpython_wasm.records.lock import locked_toolchain

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
# URIs naming this project's build process and builder (SLSA asks for stable
# URIs; they identify, they need not resolve).
PROJECT_URI = "https://github.com/cpython-wasm-recipes/cpython-wasm-recipes"
BUILD_TYPE = f"{PROJECT_URI}/build-types/container-build/v1"
BUILDER_ID = f"{PROJECT_URI}/builders/invoke-build"
SUFFIX = ".provenance.json"


def provenance_name(artifact_name: str) -> str:
    return artifact_name + SUFFIX


def _descriptor(name: str, uri: str, sha256: str, **annotations) -> dict:
    descriptor = {"name": name, "uri": uri, "digest": {"sha256": sha256}}
    if annotations:
        descriptor["annotations"] = annotations
    return descriptor


def resolved_dependencies(lock: dict) -> list[dict]:
    """Every input of the build, each with a URI and a sha256 digest."""
    base = lock["base"]
    dependencies = [_descriptor(pin["name"], pin["urls"][0], pin["sha256"], mirrors=pin["urls"][1:])
                    for pin in lock["inputs"]]
    if base["rootfs_sha256"]:
        dependencies.append(_descriptor(
            f"rootfs.tar ({base['name']})", f"{base['mirror']}/dists/{base['suite']}", base["rootfs_sha256"],
            bootstrap="mmdebstrap", variant=base["variant"], source_date_epoch=base["source_date_epoch"]))
    else:  # a registry image pinned by digest
        reference = base["image"]
        dependencies.append(_descriptor(reference.split("@")[0], f"docker://{reference}",
                                        reference.rsplit("@sha256:", 1)[1]))
    for image_name, image in sorted(lock["images"].items()):
        # The image the stages ran in, by content: its ID is the sha256 of its config, which names its one layer.
        dependencies.append(_descriptor(image["tag"], f"docker-image:{image['tag']}", image["id"].removeprefix("sha256:"),
                                        layer=image["diff_id"], archive="invoke image-export"))
        for context_name, sha256 in sorted(image["context"].items()):
            dependencies.append(_descriptor(context_name, f"{image_name}-image-context:{context_name}", sha256))
    packages = {package["filename"]: package for image in lock["images"].values() for package in image["packages"]}
    for filename, package in sorted(packages.items()):
        dependencies.append(_descriptor(
            f"{package['name']}_{package['version']}_{package['architecture']}.deb", f"{base['mirror']}/{filename}",
            package["sha256"]))
    return dependencies


def statement(lock: dict) -> dict:
    build = lock["build"]
    target, sdk = locked_toolchain(build)
    tarball = f"{lock['artifact']}.tar.gz"
    artifacts = [tarball, *(companion_name(tarball, suffix) for suffix in COMPANION_SUFFIXES)]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": artifact, "digest": {"sha256": lock["outputs"][artifact]["sha256"]}}
                    for artifact in artifacts if artifact in lock["outputs"]],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "python": build["python"], "target": build["target"],
                    TOOLCHAINS[target].lock_key: sdk,
                    "provider": build["provider"], "configure_host_args": build["configure_host_args"],
                    "recipes": lock["recipes"],
                },
                "internalParameters": {
                    "source_date_epoch": build["source_date_epoch"], "host_arch": build["host_arch"],
                    "host_environment": build["host_environment"],
                    "images": {"base": lock["base"]["image"],
                               **{name: image["tag"] for name, image in sorted(lock["images"].items())}},
                    "products": lock["products"],
                },
                "resolvedDependencies": resolved_dependencies(lock),
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {"cpython-wasm-recipes": version("cpython-wasm-recipes")}},
                "metadata": {"invocationId": f"lockfiles/{lock['artifact']}.json"},
            },
        },
    }


def encode(document: dict) -> bytes:
    return (json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()
