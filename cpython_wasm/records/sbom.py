"""The SBOM: what is inside an artifact, as CycloneDX 1.6 JSON (cyclonedx-python-lib).

    metadata.component   the artifact tarball (sha256)
    components           python.wasm; CPython (its source tarball's sha256); the C
                         libraries compiled into python.wasm: the sysroot libraries
                         (zlib...), wasi-libc and compiler-rt's builtins, each with
                         its version and the sha256 of what it was built from
    metadata.tools       the toolchain: the WASI SDK tarball, or the Debian
                         packages that stand in for it, and wasmtime (smoke run)
    dependencies         artifact → python.wasm → CPython and the C libraries

Written from the plan and the lockfile only: the serial number is derived from
the artifact's hash and the timestamp is the release's SOURCE_DATE_EPOCH, so a
rebuild writes the same bytes.
"""

import datetime
import uuid

from cyclonedx.model import HashAlgorithm, HashType
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from cpython_wasm.recipes.artifacts import DEVKIT_SUFFIX, companion_name
from cpython_wasm.recipes.plan import Plan

SUFFIX = ".cdx.json"
SERIAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/cpython-wasm-recipes/cpython-wasm-recipes/sbom")


def sbom_name(artifact_name: str) -> str:
    return artifact_name + SUFFIX


def component(kind: ComponentType, name: str, version: str, sha256: str, purl: PackageURL | None = None,
               bom_ref: str | None = None, description: str | None = None) -> Component:
    return Component(type=kind, name=name, version=version, bom_ref=bom_ref or f"{name}@{version}",
                     hashes=[HashType(alg=HashAlgorithm.SHA_256, content=sha256)], purl=purl,
                     description=description)


def _generic(name: str, version: str, url: str) -> PackageURL:
    return PackageURL("generic", name=name, version=version, qualifiers={"download_url": url})


def deb(package: dict) -> Component:
    purl = PackageURL("deb", "debian", package["name"], package["version"], {"arch": package["architecture"]})
    return component(ComponentType.LIBRARY, package["name"], package["version"], package["sha256"], purl)


def debian_packages(lock: dict, image: str) -> dict[str, dict]:
    return {package["name"]: package for package in lock["images"][image]["packages"]}


def compiled_in(plan: Plan, lock: dict, target) -> list[Component]:
    """The C code linked into python.wasm besides CPython's own: the recipes' libraries, and what the target's
    toolchain links in (its C library, its runtime)."""
    return [
        component(ComponentType.LIBRARY, library.name, library.version, library.source.sha256,
                  _generic(library.name, library.version, library.source.urls[0]),
                  description=f"compiled for {lock['build']['target']} from {library.source.file}")
        for library in plan.libraries
    ] + [
        component(ComponentType.LIBRARY, extension.name, extension.version, extension.source.sha256,
                  PackageURL("pypi", name=extension.name, version=extension.version),
                  description=f"{', '.join(module.name for module in extension.modules)} linked into python.wasm, "
                              f"and its pure-Python packages, from {extension.source.file}")
        for extension in plan.extensions
    ] + target.sbom_compiled_in(plan, lock)


def bom(plan: Plan, lock: dict, target) -> Bom:
    """The SBOM of a build; `target` (targets/) names its toolchain's components."""
    name = lock["artifact"]
    outputs = lock["outputs"]
    tarball_sha256 = outputs[f"{name}.tar.gz"]["sha256"]
    document = Bom(serial_number=uuid.uuid5(SERIAL_NAMESPACE, tarball_sha256))
    document.metadata.timestamp = datetime.datetime.fromtimestamp(plan.release.source_date_epoch, datetime.UTC)
    artifact = component(ComponentType.APPLICATION, name, plan.release.version, tarball_sha256, bom_ref=name,
                          description=f"CPython {plan.release.version} for {lock['build']['target']}: "
                                      f"python.wasm and its standard library")
    document.metadata.component = artifact
    wasm = component(ComponentType.FILE, "python.wasm", plan.release.version, outputs["python.wasm"]["sha256"],
                      bom_ref="python.wasm")
    source = plan.release.source
    cpython = component(ComponentType.LIBRARY, "cpython", plan.release.version, source.sha256,
                         _generic("cpython", plan.release.version, source.urls[0]),
                         description=f"built from {source.file}")
    libraries = compiled_in(plan, lock, target)
    # The JavaScript the browser page loads, shipped beside it (recipes/web/).
    scripts = [component(ComponentType.LIBRARY, web.name, web.version, web.tarball.sha256,
                         web.package_url,
                         description=f"{', '.join(file.path for file in web.files)} from {web.tarball.file}, "
                                     f"in {web.directory}/ for the REPL page")
               for web in plan.web_packages]
    for part in (wasm, cpython, *libraries, *scripts):
        document.components.add(part)
    for tool in target.sbom_toolchain(plan, lock):
        document.metadata.tools.components.add(tool)
    document.register_dependency(artifact, [wasm, *scripts])
    document.register_dependency(wasm, [cpython, *libraries])
    devkit_name = companion_name(f"{name}.tar.gz", DEVKIT_SUFFIX)
    if devkit_name in outputs:
        # The same code as python.wasm, as static libraries and headers to link it again.
        devkit = component(ComponentType.FILE, devkit_name, plan.release.version, outputs[devkit_name]["sha256"],
                           bom_ref=devkit_name, description="libpython, the archives it links with and the headers")
        document.components.add(devkit)
        document.register_dependency(devkit, [cpython, *libraries])
    return document


def encode(document: Bom) -> bytes:
    return (JsonV1Dot6(document).output_as_string(indent=1) + "\n").encode()

