"""scripts/package-deb.sh (`make deb`) makes the Debian package README.md ("Install on a server")
describes: lintian finds no error or warning it was not told about (infra/deb/lintian-overrides
gives each accepted tag with its reason); the listing has each path with its mode, owned by
root; the control fields and Depends are those of the binary's own libraries; the manual page
renders; the completions load in bash, zsh and fish; and unpacked into a scratch root, the
binary answers --version, `config check` of the starter config names exactly what is left to
fill and passes once it is filled, and systemd accepts the
units with the package's drop-in."""

import gzip
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import REPO, which

SCRIPT = REPO / "scripts/package-deb.sh"
MAINTAINER_SCRIPTS = ["postinst", "prerm", "postrm"]

# Path in the package -> mode. Directories are 0755 throughout.
EXPECTED = {
    "usr/bin/kscaler": 0o755,
    "lib/systemd/system/kscaler.service": 0o644,
    "lib/systemd/system/kscaler.timer": 0o644,
    "lib/systemd/system/kscaler.service.d/package.conf": 0o644,
    "etc/kscaler/config.yaml": 0o644,
    "etc/kscaler/kscaler.env": 0o644,
    "usr/share/bash-completion/completions/kscaler": 0o644,
    "usr/share/zsh/vendor-completions/_kscaler": 0o644,
    "usr/share/fish/vendor_completions.d/kscaler.fish": 0o644,
    "usr/share/man/man1/kscaler.1.gz": 0o644,
    "usr/share/doc/kscaler/copyright": 0o644,
    "usr/share/doc/kscaler/changelog.gz": 0o644,
    "usr/share/lintian/overrides/kscaler": 0o644,
}


def run(*argv, **kwargs):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=kwargs.pop("timeout", 300),
                          **kwargs)


@pytest.fixture(scope="module")
def deb():
    """Built once per session: the release build is reused when it is current."""
    built = run(SCRIPT, cwd=REPO, timeout=3600)
    assert built.returncode == 0, built.stderr[-4000:]
    path = REPO / built.stdout.strip().splitlines()[-1]
    assert path.parent == REPO / "dist" and path.is_file(), built.stdout
    return path


@pytest.fixture(scope="module")
def control(deb):
    fields = run(which("dpkg-deb"), "--field", deb).stdout
    return dict(re.findall(r"^(\S+): (.*)$", fields, re.M))


@pytest.fixture(scope="module")
def unpacked(deb, tmp_path_factory):
    """The package's files under a scratch root (dpkg-deb -x: what dpkg would install)."""
    root = tmp_path_factory.mktemp("root")
    extracted = run(which("dpkg-deb"), "-x", deb, root)
    assert extracted.returncode == 0, extracted.stderr
    return root


def lintian(deb):
    # --pedantic too: every tag at every level is listed, so an override that no longer matches
    # shows as unused-override.
    return run(which("lintian"), "--display-info", "--pedantic", "--tag-display-limit", "0", deb, timeout=600)


@pytest.mark.parametrize("script", ["scripts/package-deb.sh", "scripts/build-release.sh",
                                    *(f"infra/deb/{s}" for s in MAINTAINER_SCRIPTS)])
def test_shellcheck_is_clean(script):
    result = run(which("shellcheck"), "--severity=style", REPO / script)
    assert result.returncode == 0, result.stdout


def test_lintian_reports_nothing_but_the_overridden_tags_and_uses_every_override(deb):
    """No error, warning, info or pedantic tag is left: each was fixed or is overridden with its
    reason; an override that no longer matches shows as unused-override (an info tag)."""
    result = lintian(deb)
    findings = [line for line in result.stdout.splitlines() if re.match(r"[EWIPX]: ", line)]
    assert findings == [], result.stdout
    overridden = run(which("lintian"), "--display-info", "--pedantic", "--show-overrides", deb, timeout=600).stdout
    assert re.search(r"^O: kscaler: hardening-no-bindnow", overridden, re.M), overridden
    # The spelling override holds only while the words are the linked libraries', not ours.
    words = re.findall(r"^O: kscaler: spelling-error-in-binary (\S+) ", overridden, re.M)
    sources = "\n".join(path.read_text() for path in (REPO / "Sources").rglob("*.swift"))
    assert words and not [word for word in words if re.search(rf"\b{re.escape(word)}\b", sources)], words
    overrides = (REPO / "infra/deb/lintian-overrides").read_text().splitlines()
    for line in overrides:
        if line and not line.startswith("#"):
            # Each accepted tag is preceded by its reason.
            index = overrides.index(line)
            assert index > 0 and overrides[index - 1].startswith("# "), f"no reason above: {line}"


def test_lintian_reports_a_broken_package(deb, unpacked, tmp_path):
    """The lintian run above can fail: the same files without a copyright file are an error."""
    root = tmp_path / "root"
    shutil.copytree(unpacked, root, symlinks=True)
    (root / "usr/share/doc/kscaler/copyright").unlink()
    run(which("dpkg-deb"), "-e", deb, root / "DEBIAN")
    broken = tmp_path / "broken.deb"
    assert run(which("dpkg-deb"), "--root-owner-group", "--build", root, broken).returncode == 0
    assert re.search(r"^E: kscaler: no-copyright-file", lintian(broken).stdout, re.M)


def test_listing_has_each_path_with_its_mode_owned_by_root(deb):
    listing = run(which("dpkg-deb"), "-c", deb).stdout.splitlines()
    entries = {}
    for line in listing:
        mode, owner, _size, _date, _time, path, *_ = line.split()
        entries[path.removeprefix("./").rstrip("/")] = (mode, owner)
    for path, mode in EXPECTED.items():
        assert path in entries, f"{path} missing from:\n" + "\n".join(listing)
        assert entries[path] == ("-" + stat_string(mode), "root/root"), (path, entries[path])
    for path, (mode, owner) in entries.items():
        assert owner == "root/root", path
        if mode.startswith("d"):
            assert mode == "drwxr-xr-x", path
    assert not [p for p in entries if p.startswith("usr/local")], "Debian packages never install in /usr/local"


def stat_string(mode):
    bits = "rwxrwxrwx"
    return "".join(bit if mode & (1 << (8 - i)) else "-" for i, bit in enumerate(bits))


def test_control_fields(deb, control, unpacked):
    version = run(unpacked / "usr/bin/kscaler", "--version").stdout.strip()
    assert control["Package"] == "kscaler"
    commit = run("git", "rev-parse", "--short=12", "HEAD", cwd=REPO).stdout.strip()
    assert re.fullmatch(rf"{re.escape(version)}\+git\d{{8}}\.\d{{6}}\.{commit}", control["Version"]), control["Version"]
    assert deb.name == f"kscaler_{control['Version']}_{control['Architecture']}.deb"
    assert control["Architecture"] == run(which("dpkg"), "--print-architecture").stdout.strip()
    assert control["Section"] == "admin" and control["Priority"] == "optional"
    assert re.fullmatch(r".+ <[^@ ]+@[^@ ]+>", control["Maintainer"]), control["Maintainer"]
    assert "ca-certificates" in control["Depends"]
    info = tmp_control(deb)
    assert info["conffiles"].split() == ["/etc/kscaler/config.yaml", "/etc/kscaler/kscaler.env"]
    assert sorted(name for name in info if name in MAINTAINER_SCRIPTS) == sorted(MAINTAINER_SCRIPTS)


def tmp_control(deb):
    """The control archive's members, by name."""
    import io
    import tarfile
    data = subprocess.run([which("dpkg-deb"), "--ctrl-tarfile", str(deb)], capture_output=True, timeout=60).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return {member.name.removeprefix("./"): archive.extractfile(member).read().decode()
                for member in archive.getmembers() if member.isfile()}


def test_depends_names_the_package_of_every_library_the_binary_needs(control, unpacked):
    """Checked against ldd, independently of dpkg-shlibdeps: each library in the binary's NEEDED
    list comes from a package that Depends names."""
    binary = unpacked / "usr/bin/kscaler"
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", run("readelf", "-d", binary).stdout)
    assert {"libcurl.so.4", "libcrypto.so.3", "libyaml-0.so.2"} <= set(needed), needed
    listed = run("ldd", binary).stdout
    resolved = dict(re.findall(r"^\s*(\S+) => (/\S+)", listed, re.M))
    resolved |= {os.path.basename(path): path for path in re.findall(r"^\s*(/\S+) \(", listed, re.M)}  # the loader
    depends = {re.split(r"[ (]", alternative.strip())[0] for alternative in re.split(r"[,|]", control["Depends"])}
    for library in needed:
        path = os.path.realpath(resolved[library])
        owners = None
        for candidate in (path, path.removeprefix("/usr")):
            found = run(which("dpkg"), "-S", candidate)
            if found.returncode == 0:
                owners = {line.split(":")[0] for line in found.stdout.splitlines()}
                break
        assert owners, f"no package owns {path}"
        assert owners & depends, f"{library} ({path}) comes from {owners}; Depends: {control['Depends']}"


def test_md5sums_match_the_files(unpacked, deb):
    md5sums = tmp_control(deb)["md5sums"]
    listed = {line.split(None, 1)[1] for line in md5sums.splitlines()}
    assert "usr/bin/kscaler" in listed and not any(p.startswith("etc/") for p in listed)  # conffiles: dpkg keeps theirs
    checked = run("md5sum", "--check", "--strict", cwd=unpacked, input=md5sums)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_installed_binary_answers_version_and_is_stripped(unpacked, control):
    binary = unpacked / "usr/bin/kscaler"
    answered = run(binary, "--version")
    assert answered.returncode == 0 and control["Version"].startswith(answered.stdout.strip() + "+git")
    assert ".symtab" not in run("readelf", "-S", "-W", binary).stdout


def test_the_starter_config_names_what_to_fill_and_passes_once_filled(unpacked, tmp_path):
    binary = unpacked / "usr/bin/kscaler"
    shipped = unpacked / "etc/kscaler/config.yaml"
    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AWS_REGION": "us-east-1"}
    assert shipped.read_bytes() == run(binary, "config", "init", env=environment).stdout.encode()
    refused = run(binary, "config", "check", "--config", shipped, env=environment)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    placeholders = re.findall(r'^\s*([a-z_]+):\s*"<required: ', shipped.read_text(), re.M)
    assert placeholders, "the starter config has values to fill"
    for key in placeholders:
        assert key in refused.stdout + refused.stderr, key
    filled = shipped.read_text()
    filled = re.sub(r'^cluster_id: "<required: [^"]*"', "cluster_id: demo", filled, flags=re.M)
    filled = re.sub(r'^table: "<required: [^"]*"', "table: kscaler", filled, flags=re.M)
    filled = re.sub(r'^(\s*)url: "<required: [^"]*"', r"\1url: http://127.0.0.1:9090", filled, flags=re.M)
    filled = re.sub(r'^(\s*)name: "<required: [^"]*"', r"\1name: kscaler-demo-general", filled, flags=re.M)
    filled = re.sub(r'^(\s*)instance_types: "<required: [^"]*"', r"\1instance_types: [t3.large]", filled, flags=re.M)
    config = tmp_path / "config.yaml"
    config.write_text(filled)
    checked = run(binary, "config", "check", "--config", config, env=environment)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_units_are_infra_systemd_s_and_systemd_accepts_them_with_the_drop_in(unpacked):
    for name in ("kscaler.service", "kscaler.timer"):
        assert (unpacked / "lib/systemd/system" / name).read_bytes() == (REPO / "infra/systemd" / name).read_bytes()
    assert (unpacked / "etc/kscaler/kscaler.env").read_bytes() == (REPO / "infra/systemd/kscaler.env.example").read_bytes()
    drop_in = (unpacked / "lib/systemd/system/kscaler.service.d/package.conf").read_text().splitlines()
    unit_exec = next(line for line in (REPO / "infra/systemd/kscaler.service").read_text().splitlines()
                     if line.startswith("ExecStart="))
    assert drop_in[-2:] == ["ExecStart=", unit_exec.replace("/usr/local/bin/", "/usr/bin/")]
    # systemd-analyze verify: the drop-in resets ExecStart, so the only command is /usr/bin's
    # binary (verify fails on a command that does not exist in the root).
    root = unpacked.parent / (unpacked.name + "-systemd")
    shutil.copytree(unpacked, root, symlinks=True)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True, dirs_exist_ok=True)
    for name in ("kscaler.service", "kscaler.timer"):
        verified = run(which("systemd-analyze"), "verify", f"--root={root}", name)
        assert verified.returncode == 0 and verified.stdout + verified.stderr == "", verified.stdout + verified.stderr
    (root / "usr/bin/kscaler").unlink()
    missing = run(which("systemd-analyze"), "verify", f"--root={root}", "kscaler.service")
    assert "/usr/bin/kscaler" in missing.stdout + missing.stderr


def test_the_manual_page_renders(unpacked):
    page = gzip.decompress((unpacked / "usr/share/man/man1/kscaler.1.gz").read_bytes()).decode()
    rendered = run(which("groff"), "-mandoc", "-Tutf8", "-ww", input=page)
    assert rendered.returncode == 0 and rendered.stderr == "", rendered.stderr
    text = re.sub(r".\x08", "", rendered.stdout)
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION"):
        assert re.search(rf"^{heading}$", text, re.M), heading
    # Generated from the binary's own help: every command it knows has its entry.
    commands = subcommand_names(json.loads(run(unpacked / "usr/bin/kscaler", "--experimental-dump-help").stdout)["command"])
    assert {"run", "plan", "doctor", "check", "status", "render"} <= set(commands), commands
    assert re.findall(r"^\.It Em (\S+)$", page, re.M) == commands
    assert "A run-once node autoscaler for self-managed Kubernetes on EC2" in text.replace("\n", " ").replace("  ", " ")
    if shutil.which("man"):
        shown = run("man", "-l", unpacked / "usr/share/man/man1/kscaler.1.gz", env={**os.environ, "MANPAGER": "cat"})
        assert shown.returncode == 0 and "SYNOPSIS" in re.sub(r".\x08", "", shown.stdout), shown.stderr


def subcommand_names(command):
    """Depth first, in the help's order, as the manual lists them."""
    names = []
    for sub in command.get("subcommands") or []:
        names += [sub["commandName"], *subcommand_names(sub)]
    return names


def test_bash_completion_loads_and_completes_subcommands(unpacked):
    script = unpacked / "usr/share/bash-completion/completions/kscaler"
    assert run("bash", "-n", script).returncode == 0
    loaded = run("bash", "-c", f'source "{script}" && complete -p kscaler')
    assert loaded.returncode == 0 and loaded.stdout.startswith("complete "), loaded.stderr


def test_zsh_completion_parses(unpacked):
    script = unpacked / "usr/share/zsh/vendor-completions/_kscaler"
    assert script.read_text().startswith("#compdef kscaler")
    parsed = run(which("zsh"), "-n", script)
    assert parsed.returncode == 0, parsed.stderr


def test_fish_completion_loads_and_completes_subcommands(unpacked):
    script = unpacked / "usr/share/fish/vendor_completions.d/kscaler.fish"
    assert run(which("fish"), "-n", script).returncode == 0
    completed = run(which("fish"), "--no-config", "-c", f'source "{script}"; complete -C "kscaler "',
                    env={**os.environ, "HOME": str(unpacked)})
    assert completed.returncode == 0, completed.stderr
    offered = {line.split("\t")[0] for line in completed.stdout.splitlines()}
    assert {"run", "plan", "doctor"} <= offered, completed.stdout
