"""An estimate of kscaler's container image size (infra/container/Containerfile), for a machine
where Docker cannot run. Python stdlib and apt-cache only.

The image is debian:bookworm-slim + `apt-get install --no-install-recommends libcurl4
libyaml-0-2 ca-certificates` + the stripped binary (tzdata is in the slim base already). This resolves that install the way apt does (each
Depends / Pre-Depends group satisfied by what is already there, else by its first
alternative) against the package set of debian:bookworm-slim, and sums apt's Installed-Size
of what it adds. Installed-Size includes documentation that a slim image would keep out, so
the figure leans high.

Usage: python3 image_estimate.py STRIPPED_BINARY   → one JSON object on stdout
"""
import json
import os
import re
import subprocess
import sys

# The packages of debian:bookworm-slim, from debuerreotype/docker-debian-artifacts
# (bookworm/slim/rootfs.manifest; architecture qualifiers dropped).
SLIM = set("""
adduser apt base-files base-passwd bash bsdutils coreutils dash debconf debian-archive-keyring debianutils
diffutils dpkg e2fsprogs findutils gcc-12-base gpgv grep gzip hostname init-system-helpers libacl1
libapt-pkg6.0 libattr1 libaudit-common libaudit1 libblkid1 libbz2-1.0 libc-bin libc6 libcap-ng0 libcap2
libcom-err2 libcrypt1 libdb5.3 libdebconfclient0 libext2fs2 libffi8 libgcc-s1 libgcrypt20 libgmp10
libgnutls30 libgpg-error0 libhogweed6 libidn2-0 liblz4-1 liblzma5 libmd0 libmount1 libnettle8 libp11-kit0
libpam-modules libpam-modules-bin libpam-runtime libpam0g libpcre2-8-0 libseccomp2 libselinux1
libsemanage-common libsemanage2 libsepol2 libsmartcols1 libss2 libstdc++6 libsystemd0 libtasn1-6 libtinfo6
libudev1 libunistring2 libuuid1 libxxhash0 libzstd1 login logsave mawk mount ncurses-base ncurses-bin passwd
perl-base sed sysvinit-utils tar tzdata usr-is-merged util-linux util-linux-extra zlib1g
""".split())


def show(packages):
    """apt's candidate stanza of each package: name → (Installed-Size KiB, dependency groups, provides)."""
    out = subprocess.run(["apt-cache", "show", "--no-all-versions"] + sorted(packages),
                         capture_output=True, text=True).stdout
    stanzas = {}
    for block in out.split("\n\n"):
        fields = dict(re.findall(r"^([\w-]+): (.*)$", block, re.M))
        if "Package" not in fields:
            continue
        groups = []
        for key in ("Pre-Depends", "Depends"):
            for group in filter(None, (g.strip() for g in fields.get(key, "").split(","))):
                groups.append([re.sub(r"[:\s(].*", "", alt.strip()) for alt in group.split("|")])
        provides = [re.sub(r"[:\s(].*", "", p.strip()) for p in fields.get("Provides", "").split(",") if p.strip()]
        stanzas[fields["Package"]] = (int(fields.get("Installed-Size", "0")), groups, provides)
    return stanzas


def dependency_names(roots):
    """Every real package the roots could pull in (all alternatives), in one apt-cache call."""
    out = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                          "--no-breaks", "--no-replaces", "--no-enhances"] + roots, capture_output=True, text=True).stdout
    return {line.strip() for line in out.splitlines() if line.strip() and not line.startswith((" ", "<"))}


def added_by(roots, known, present):
    """What installing `roots` adds to a system holding `present`, resolving as apt does."""
    provided = set(present)
    selected = {}
    queue = list(roots)
    while queue:
        package = queue.pop(0)
        if package in provided or package not in known:
            continue
        size, groups, provides = known[package]
        selected[package] = size
        provided.update([package] + provides)
        queue += [group[0] for group in groups if not any(alt in provided for alt in group)]
    return selected


def main():
    binary = os.path.getsize(sys.argv[1])
    # What the slim image's own packages provide (e.g. debconf-2.0) counts as present too.
    roots = ["libcurl4", "libyaml-0-2", "ca-certificates"]
    known = show(SLIM | dependency_names(roots))
    # What the slim image's own packages provide (e.g. debconf-2.0) counts as present too.
    present = set(SLIM)
    for package in SLIM & known.keys():
        present.update(known[package][2])
    packages = added_by(roots, known, present)
    base_kib = sum(known[package][0] for package in SLIM & known.keys())
    print(json.dumps({
        "added_packages_kib": packages,
        "added_packages_mb": sum(packages.values()) / 1024,
        "binary_mb": binary / 2**20,
        "added_mb": sum(packages.values()) / 1024 + binary / 2**20,
        "slim_installed_size_mb": base_kib / 1024,
    }))


if __name__ == "__main__":
    main()
