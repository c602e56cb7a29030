"""infra/ami/bake-k3s-worker.sh installs k3s and its installer only when both downloads match
their pinned sha256, run here in a sandbox with a fake curl on PATH serving files from a folder.
The real pins cannot be downloaded here (no route to GitHub), so the sandboxed copy pins the sums
of its own test bytes; the script's logic is otherwise the one in the repository."""

import hashlib
import os
import re
import subprocess

import pytest

from conftest import REPO, which

SCRIPT = REPO / "infra/ami/bake-k3s-worker.sh"

FAKE_CURL = r"""#!/bin/bash
# curl -fsSL ... -o FILE URL: serve URL from $FAKE_CURL_ROOT/<URL without scheme>; log the argv.
printf '%s\n' "$*" >> "$FAKE_CURL_LOG"
out= url=
while [ $# -gt 0 ]; do
  case $1 in
    -o) out=$2; shift 2 ;;
    --proto | --retry | --max-time) shift 2 ;;
    -*) shift ;;
    *) url=$1; shift ;;
  esac
done
src=$FAKE_CURL_ROOT/${url#https://}
[ -f "$src" ] || { echo "curl: (22) 404 $url" >&2; exit 22; }
cp "$src" "$out"
"""


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def pins():
    text = SCRIPT.read_text()
    return dict(re.findall(r"^(K3S_[A-Z0-9_]+)=(\S+)$", text, re.M))


def test_shellcheck_clean():
    result = subprocess.run([which("shellcheck"), "--severity=style", str(SCRIPT)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout


def test_pins_are_a_release_and_sha256_sums_for_both_architectures():
    p = pins()
    assert re.fullmatch(r"v1\.[0-9]+\.[0-9]+\+k3s[0-9]+", p["K3S_VERSION"])
    for name in ("K3S_SHA256_AMD64", "K3S_SHA256_ARM64", "K3S_INSTALL_SHA256"):
        assert re.fullmatch(r"[0-9a-f]{64}", p[name]), name
    assert p["K3S_SHA256_AMD64"] != p["K3S_SHA256_ARM64"]
    assert re.fullmatch(r"[0-9a-f]{40}", p["K3S_INSTALL_COMMIT"])


def test_installs_where_the_worker_user_data_looks():
    """The paths the bake writes are the worker bootstrap's defaults."""
    bootstrap = (REPO / "userdata/k3s-worker-bootstrap.sh").read_text()
    assert "installer=${KSCALER_K3S_INSTALL:-/usr/local/bin/k3s-install.sh}" in bootstrap
    text = SCRIPT.read_text()
    assert 'install -m 0755 "$work/k3s" "$DESTDIR/usr/local/bin/k3s"' in text
    assert 'install -m 0755 "$work/k3s-install.sh" "$DESTDIR/usr/local/bin/k3s-install.sh"' in text


@pytest.fixture
def sandbox(tmp_path):
    """A copy of the script pinned to test bytes, a fake curl, and a download folder."""
    binary = {"amd64": b"\x7fELF fake k3s amd64\n", "arm64": b"\x7fELF fake k3s arm64\n"}
    installer = b"#!/bin/sh\n# fake k3s install.sh\nexit 0\n"
    p = pins()
    text = SCRIPT.read_text()
    for name, value in (("K3S_SHA256_AMD64", sha256(binary["amd64"])), ("K3S_SHA256_ARM64", sha256(binary["arm64"])),
                        ("K3S_INSTALL_SHA256", sha256(installer))):
        text = text.replace(f"{name}={p[name]}\n", f"{name}={value}\n", 1)
    script = tmp_path / "bake.sh"
    script.write_text(text)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "curl").write_text(FAKE_CURL)
    (bin_dir / "curl").chmod(0o755)
    root = tmp_path / "downloads"
    release = root / "github.com/k3s-io/k3s/releases/download" / p["K3S_VERSION"].replace("+", "%2B")
    release.mkdir(parents=True)
    (release / "k3s").write_bytes(binary["amd64"])
    (release / "k3s-arm64").write_bytes(binary["arm64"])
    raw = root / "raw.githubusercontent.com/k3s-io/k3s" / p["K3S_INSTALL_COMMIT"]
    raw.mkdir(parents=True)
    (raw / "install.sh").write_bytes(installer)
    destdir = tmp_path / "ami"
    destdir.mkdir()

    def run(arch="x86_64"):
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "DESTDIR": str(destdir), "BAKE_ARCH": arch,
               "FAKE_CURL_ROOT": str(root), "FAKE_CURL_LOG": str(tmp_path / "curl.log"), "TMPDIR": str(tmp_path)}
        return subprocess.run(["/bin/bash", str(script)], env=env, capture_output=True, text=True, timeout=60)

    return {"run": run, "destdir": destdir, "release": release, "raw": raw, "binary": binary,
            "installer": installer, "log": tmp_path / "curl.log", "tmp": tmp_path}


@pytest.mark.parametrize("arch, key", [("x86_64", "amd64"), ("aarch64", "arm64")])
def test_right_bytes_are_installed(sandbox, arch, key):
    result = sandbox["run"](arch)
    assert result.returncode == 0, result.stderr
    bin_dir = sandbox["destdir"] / "usr/local/bin"
    assert (bin_dir / "k3s").read_bytes() == sandbox["binary"][key]
    assert (bin_dir / "k3s-install.sh").read_bytes() == sandbox["installer"]
    assert os.access(bin_dir / "k3s", os.X_OK) and os.access(bin_dir / "k3s-install.sh", os.X_OK)
    urls = sandbox["log"].read_text()
    assert "--proto =https" in urls
    # No scratch files are left behind.
    assert not [p for p in sandbox["tmp"].glob("tmp.*")]


@pytest.mark.parametrize("tampered", ["k3s", "install.sh"])
def test_tampered_bytes_fail_clearly_and_install_nothing(sandbox, tampered):
    target = sandbox["release"] / "k3s" if tampered == "k3s" else sandbox["raw"] / "install.sh"
    target.write_bytes(target.read_bytes() + b"# one more line\n")
    result = sandbox["run"]("x86_64")
    assert result.returncode != 0
    assert "checksum mismatch" in result.stderr and "nothing was installed" in result.stderr
    assert not list(sandbox["destdir"].rglob("*"))


def test_a_failed_download_installs_nothing(sandbox):
    (sandbox["raw"] / "install.sh").unlink()
    result = sandbox["run"]("x86_64")
    assert result.returncode != 0 and "download failed" in result.stderr
    assert not list(sandbox["destdir"].rglob("*"))


def test_unknown_architecture_is_refused(sandbox):
    result = sandbox["run"]("riscv64")
    assert result.returncode != 0 and "unsupported machine" in result.stderr
