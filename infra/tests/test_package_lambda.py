"""scripts/package-lambda.sh makes the zip README.md ("Lambda") describes: bootstrap (stripped,
runs), lib/ with libcurl and the other non-glibc libraries it loads, config.yaml when given;
and it refuses a build that needs a newer glibc than provided.al2023's 2.34 (as the Debian 12
build here does), unless --force."""

import os
import platform
import re
import stat
import subprocess
import zipfile

import pytest

from conftest import REPO

SCRIPT = REPO / "scripts/package-lambda.sh"
ARCH = {"x86_64": "x86_64", "aarch64": "arm64"}[platform.machine()]
ZIP = REPO / f".build/lambda/kscaler-lambda-{ARCH}.zip"


def package(*arguments):
    return subprocess.run([str(SCRIPT), *arguments], cwd=REPO, capture_output=True, text=True, timeout=1800)


def newer_than_al2023(version):
    return tuple(int(part) for part in version.split(".")) > (2, 34)


def test_shellcheck_is_clean():
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    config = tmp_path_factory.mktemp("lambda") / "config.yaml"
    config.write_text("cluster_id: packaged\n")
    strict = package("--config", str(config))
    forced = package("--config", str(config), "--force")
    return strict, forced, config


def test_a_build_needing_a_newer_glibc_is_refused_unless_forced(packaged):
    strict, forced, _ = packaged
    assert forced.returncode == 0, forced.stderr
    [needed] = re.findall(r"newest glibc symbol ([0-9.]+)\)", forced.stdout)
    if newer_than_al2023(needed):
        assert strict.returncode == 1, strict.stdout + strict.stderr
        assert f"the build needs glibc {needed}, provided.al2023 has 2.34" in strict.stderr
        assert re.search(r"GLIBC_2\.3[5-9]", strict.stderr), strict.stderr
    else:
        assert strict.returncode == 0, strict.stderr


def test_the_zip_holds_bootstrap_its_libraries_and_the_config(packaged, tmp_path):
    _, forced, config = packaged
    assert forced.returncode == 0, forced.stderr
    with zipfile.ZipFile(ZIP) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path)
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    assert {"bootstrap", "config.yaml", "lib/libcurl.so.4"} <= names
    assert modes["bootstrap"] & stat.S_IXUSR
    assert not any(re.match(r"lib/(libc|libm|libdl|libpthread|librt|ld-linux)[.-]", n) for n in names), names
    assert (tmp_path / "config.yaml").read_text() == config.read_text()
    bootstrap = tmp_path / "bootstrap"
    bootstrap.chmod(0o755)
    # Stripped: no symbol table (the release build has one).
    sections = ["readelf", "-S", "-W"]
    assert b".symtab" in subprocess.run([*sections, str(REPO / ".build/static/release/kscaler")], capture_output=True, timeout=60).stdout
    assert b".symtab" not in subprocess.run([*sections, str(bootstrap)], capture_output=True, timeout=60).stdout
    # With lib/ on the library path, as Lambda sets it, every library but glibc's comes from the zip.
    environment = {**os.environ, "LD_LIBRARY_PATH": str(tmp_path / "lib")}
    resolved = subprocess.run(["ldd", str(bootstrap)], capture_output=True, text=True, env=environment, timeout=60).stdout
    assert f"libcurl.so.4 => {tmp_path}/lib/libcurl.so.4" in resolved, resolved
    done = subprocess.run([str(bootstrap), "--version"], capture_output=True, text=True, env=environment, timeout=60)
    assert done.returncode == 0 and done.stdout.strip(), done.stderr
