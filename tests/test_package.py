import hashlib
import io
import json
import os
import tarfile
import time
import zipfile

import pytest

from cpython_wasm.container.emscripten_data import EMSCRIPTEN_FILES, normalise_preloaded_zips
from cpython_wasm.container.package import DEBUG_WASM, main
from cpython_wasm.container.tarball import manifest_of, tree_entries, write_tar_gz
from cpython_wasm.container.wasm import custom_section, split_debug_info, strip_debug_info, wasm_sections
from cpython_wasm.files import write_atomically


def make_tree(root, mode, mtime):
    (root / "lib" / "python3.13").mkdir(parents=True)
    files = {"python.wasm": b"\0asm", "lib/python3.13/os.py": b"import sys\n"}
    for name, data in files.items():
        (root / name).write_bytes(data)
        os.chmod(root / name, mode)
        os.utime(root / name, (mtime, mtime))
    os.chmod(root / "python.wasm", mode | 0o100)
    return root


def test_the_tarball_depends_only_on_content(tmp_path):
    one = make_tree(tmp_path / "one" / "artifact", 0o600, 1_000_000)
    two = make_tree(tmp_path / "two" / "artifact", 0o664, 2_000_000)
    write_tar_gz(tmp_path / "one.tar.gz", tree_entries(one, "artifact"), mtime=1749600000)
    write_tar_gz(tmp_path / "two.tar.gz", tree_entries(two, "artifact"), mtime=1749600000)
    assert (tmp_path / "one.tar.gz").read_bytes() == (tmp_path / "two.tar.gz").read_bytes()
    with tarfile.open(tmp_path / "one.tar.gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert list(members) == sorted(members)
    assert {m.mtime for m in members.values()} == {1749600000}
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members.values()} == {(0, 0, "", "")}
    assert members["artifact/python.wasm"].mode == 0o755
    assert members["artifact/lib/python3.13/os.py"].mode == 0o644
    assert members["artifact/lib"].mode == 0o755


def test_the_manifest_lists_every_file_with_its_hash(tmp_path):
    root = make_tree(tmp_path / "artifact", 0o644, 0)
    (root / "manifest.json").write_text("{}")
    manifest = manifest_of(root)
    assert sorted(manifest) == ["lib/python3.13/os.py", "python.wasm"]
    assert manifest["python.wasm"] == {"sha256": hashlib.sha256(b"\0asm").hexdigest(), "size": 4}


def test_symlinks_are_not_packaged(tmp_path):
    root = make_tree(tmp_path / "artifact", 0o644, 0)
    (root / "link").symlink_to("python.wasm")
    with pytest.raises(ValueError, match="symbolic links"):
        list(tree_entries(root, "artifact"))


def test_atomic_writes_replace_whole_files_and_leave_no_temp(tmp_path):
    target = tmp_path / "dist" / "a.tar.gz"
    write_atomically(target, b"old")
    source = tmp_path / "new"
    source.write_bytes(b"new" * 1000)
    write_atomically(target, source)
    assert target.read_bytes() == b"new" * 1000
    assert [p.name for p in target.parent.iterdir()] == ["a.tar.gz"]


def stdlib_zip(mtime: int) -> bytes:
    """A zip like Tools/wasm/wasm_assets.py's, its entries stamped with the time of the build."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("os.pyc", "json/__init__.pyc"):
            info = zipfile.ZipInfo(name, time.gmtime(mtime)[:6])
            archive.writestr(info, name.encode() * 100, zipfile.ZIP_DEFLATED)
        archive.comment = b"stdlib"
    return buffer.getvalue()


def preload(directory, archive: bytes, landmark=b"# os.py\n"):
    """python.data holding a landmark file and the zip, and python.js's table of them, as the file packager writes."""
    (directory / "python.data").write_bytes(landmark + archive)
    (directory / "python.js").write_bytes(
        b'loadPackage({files:[{filename:"/usr/local/lib/python3.13/os.py",start:0,end:%d},'
        b'{filename:"/usr/local/lib/python313.zip",start:%d,end:%d}],remote_package_size:%d})'
        % (len(landmark), len(landmark), len(landmark) + len(archive), len(landmark) + len(archive)))


def test_the_preloaded_stdlib_zip_gets_the_release_time_whatever_the_build_time(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for directory, built in ((one, 1_800_000_000), (two, 1_900_000_000)):
        directory.mkdir()
        preload(directory, stdlib_zip(built))
        assert normalise_preloaded_zips(directory / "python.js", directory / "python.data", 1749600000) == 1
    assert (one / "python.data").read_bytes() == (two / "python.data").read_bytes()
    data = (one / "python.data").read_bytes()
    assert data.startswith(b"# os.py\n")
    with zipfile.ZipFile(io.BytesIO(data[len(b"# os.py\n"):])) as archive:
        assert archive.testzip() is None and archive.comment == b"stdlib"
        assert {info.date_time for info in archive.infolist()} == {(2025, 6, 11, 0, 0, 0)}
        assert archive.read("os.pyc") == b"os.pyc" * 100


def test_a_loader_without_a_preloaded_zip_is_refused(tmp_path):
    (tmp_path / "python.js").write_text("no table here")
    (tmp_path / "python.data").write_bytes(b"")
    with pytest.raises(ValueError, match="names no preloaded .zip file"):
        normalise_preloaded_zips(tmp_path / "python.js", tmp_path / "python.data", 0)


def test_an_emscripten_package_holds_the_link_outputs_and_nothing_else_of_the_build(tmp_path):
    build = tmp_path / "cross-build" / "wasm32-unknown-emscripten"
    build.mkdir(parents=True)
    for name in EMSCRIPTEN_FILES:
        (build / name).write_bytes(name.encode())
    preload(build, stdlib_zip(2_000_000_000))
    (build / "libpython3.13.a").write_bytes(b"not packaged")
    (build / "emscripten-cache").mkdir()
    output = tmp_path / "out"
    output.mkdir()
    main(["--artifact", "python-3.13.5-emscripten-3.1.69-debian", "--line", "3.13", "--target", "emscripten",
          "--source", str(tmp_path), "--host-build", str(build), "--build-python", "/nonexistent/python",
          "--mtime", "1749600000", "--output", str(output)])
    with tarfile.open(output / "python-3.13.5-emscripten-3.1.69-debian.tar.gz") as tar:
        names = sorted(member.name.split("/", 1)[1] for member in tar.getmembers() if "/" in member.name)
    assert names == sorted([*EMSCRIPTEN_FILES, "manifest.json"])
    assert sorted(json.loads((output / "manifest.json").read_text())["files"]) == sorted(EMSCRIPTEN_FILES)


def test_a_missing_link_output_fails_the_package(tmp_path):
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "python.js").write_text("")
    with pytest.raises(FileNotFoundError, match="python.wasm"):
        main(["--artifact", "a", "--line", "3.13", "--target", "emscripten", "--source", str(tmp_path),
              "--host-build", str(tmp_path / "build"), "--build-python", "/x", "--mtime", "0",
              "--output", str(tmp_path)])


def wasm_with_dwarf(tmp_path):
    """A real module (it prints and exits) with DWARF-named custom sections appended, as clang -g leaves them."""
    import wasmtime

    from tests.test_runtime import HELLO

    module = wasmtime.wat2wasm(HELLO) + custom_section(".debug_info", b"\1" * 300) + custom_section(
        ".debug_line", b"\2" * 100) + custom_section("producers", b"\0")
    path = tmp_path / "python.wasm"
    path.write_bytes(module)
    return path


def test_stripping_removes_dwarf_and_nothing_else(tmp_path):
    data = wasm_with_dwarf(tmp_path).read_bytes()
    stripped, removed = strip_debug_info(data)
    names = [name for _, name, _, _ in wasm_sections(stripped)]
    assert ".debug_info" not in names and ".debug_line" not in names and "producers" in names
    assert removed == len(data) - len(stripped) > 400
    assert strip_debug_info(stripped) == (stripped, 0)  # nothing left to strip


def test_the_split_module_runs_and_names_its_debug_file(tmp_path):
    import wasmtime

    from cpython_wasm.runtime import run_wasi

    linked = wasm_with_dwarf(tmp_path)
    assert split_debug_info(linked, tmp_path / "shipped.wasm", tmp_path / DEBUG_WASM)
    shipped = (tmp_path / "shipped.wasm").read_bytes()
    assert (tmp_path / DEBUG_WASM).read_bytes() == linked.read_bytes()  # the debug file is the module as linked
    sections = {name: (start, end) for _, name, start, end in wasm_sections(shipped)}
    start, end = sections["external_debug_info"]
    assert shipped[start:end].endswith(DEBUG_WASM.encode())
    assert wasmtime.Module.validate(wasmtime.Engine(), shipped) is None
    stdout = tmp_path / "stdout"
    assert run_wasi(str(tmp_path / "shipped.wasm"), [], stdout=stdout) == 3
    assert stdout.read_text() == "hello from wasm\n"


def test_a_module_without_dwarf_is_shipped_as_is(tmp_path):
    import wasmtime

    from tests.test_runtime import HELLO

    (tmp_path / "python.wasm").write_bytes(wasmtime.wat2wasm(HELLO))
    assert not split_debug_info(tmp_path / "python.wasm", tmp_path / "shipped.wasm", tmp_path / DEBUG_WASM)
    assert (tmp_path / "shipped.wasm").read_bytes() == (tmp_path / "python.wasm").read_bytes()
    assert not (tmp_path / DEBUG_WASM).exists()


def test_a_wasi_package_ships_bytecode_and_puts_sources_and_dwarf_in_the_debug_artifact(tmp_path):
    import sys

    source, build = tmp_path / "source", tmp_path / "build"
    (source / "Lib" / "json").mkdir(parents=True)
    (source / "Lib" / "os.py").write_text("SEP = '/'\n")
    (source / "Lib" / "json" / "__init__.py").write_text("def dumps(value):\n    return repr(value)\n")
    (source / "Lib" / "test").mkdir()
    (source / "Lib" / "test" / "test_os.py").write_text("")
    (build / "build" / "lib.wasi-wasm32-3.13").mkdir(parents=True)
    (build / "pybuilddir.txt").write_text("build/lib.wasi-wasm32-3.13\n")
    (build / "build" / "lib.wasi-wasm32-3.13" / "_sysconfigdata__wasi_wasm32-wasi.py").write_text("build_time_vars = {}\n")
    wasm_with_dwarf(build)
    output = tmp_path / "out"
    output.mkdir()
    main(["--artifact", "python-3.13.5-wasi_sdk-25-debian", "--line", "3.13", "--source", str(source),
          "--host-build", str(build), "--build-python", sys.executable, "--exclude=test",
          "--mtime", "1749600000", "--output", str(output)])

    def members(name):
        with tarfile.open(output / name) as tar:
            return {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}

    shipped = members("python-3.13.5-wasi_sdk-25-debian.tar.gz")
    assert sorted(shipped) == ["lib/python3.13/_sysconfigdata__wasi_wasm32-wasi.pyc", "lib/python3.13/json/__init__.pyc",
                               "lib/python3.13/os.pyc", "manifest.json", "python.wasm"]
    assert strip_debug_info(shipped["python.wasm"])[1] == 0
    # Bytecode compiled for the guest's paths, hash-based (flags 0b01: unchecked), no source mtime.
    pyc = shipped["lib/python3.13/os.pyc"]
    assert int.from_bytes(pyc[4:8], "little") == 0b01
    assert b"/lib/python3.13/os.py" in pyc
    debug = members("python-3.13.5-wasi_sdk-25-debian.debug.tar.gz")
    assert sorted(debug) == ["debug-manifest.json", "lib/python3.13/_sysconfigdata__wasi_wasm32-wasi.py",
                             "lib/python3.13/json/__init__.py", "lib/python3.13/os.py", DEBUG_WASM]
    assert debug[DEBUG_WASM] == (build / "python.wasm").read_bytes()
    assert sorted(json.loads(debug["debug-manifest.json"])["files"]) == sorted(set(debug) - {"debug-manifest.json"})
