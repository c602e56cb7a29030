#!/usr/bin/env bash
# Builds the Debian package of kscaler (README.md, "Install on a server"; `make deb`):
#   dist/kscaler_<version>_<arch>.deb
#     /usr/bin/kscaler                       the stripped release binary (scripts/build-release.sh)
#     /lib/systemd/system/kscaler.{service,timer}   infra/systemd's units, unchanged; the timer
#                                            is left off: run `kscaler plan`, then enable it
#     /lib/systemd/system/kscaler.service.d/package.conf
#                                            points ExecStart at /usr/bin (the unit names
#                                            /usr/local/bin, where the manual installs put it)
#     /etc/kscaler/config.yaml, kscaler.env  conffiles: infra/systemd's examples
#     bash, zsh and fish completions, the manual page kscaler(1), copyright and changelog
#
#   scripts/package-deb.sh        # prints the package's path
#
# The version is the binary's own (`kscaler --version`) with the commit's time and hash appended;
# Depends comes from dpkg-shlibdeps on the binary. The manual page is swift-argument-parser's generate-manual plugin's, run on the
# release build. Needs dpkg-dev (dpkg-shlibdeps) and binutils (strip); scripts/install-deps.sh
# installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"
die() { printf 'package-deb: %s\n' "$*" >&2; exit 1; }
for tool in dpkg-deb dpkg-shlibdeps strip gzip; do
    command -v "$tool" >/dev/null || die "$tool is missing: run scripts/install-deps.sh"
done

# The commit's time, not the clock's: the same commit makes the same package contents.
commit_epoch=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH=$commit_epoch
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
maintainer=${DEB_MAINTAINER:-$(git log -1 --format='%an <%ae>' 2>/dev/null || true)}
[ -n "$maintainer" ] || die "no maintainer: set DEB_MAINTAINER='Name <email>'"

# The manual page: swift-argument-parser's generate-manual plugin builds the package's products
# (plain release build, .build/release) and renders kscaler's --experimental-dump-help as mdoc.
plugin_out=.build/plugins/GenerateManual/outputs/kscaler
rm -rf "$plugin_out"
swift package --disable-sandbox plugin generate-manual \
    --date "$(date -u -d "@$commit_epoch" +%Y-%m-%d)" --authors "$maintainer" >&2
[ -s "$plugin_out/kscaler.1" ] || die "the generate-manual plugin wrote no $plugin_out/kscaler.1"

binary=$(scripts/build-release.sh)
upstream=$("$binary" --version)
[[ $upstream =~ ^[0-9][0-9A-Za-z.~]*$ ]] || die "kscaler --version printed '$upstream', not a Debian version"
# The binary's version plus the commit's time and hash, so each commit's package upgrades the
# last one's (apt would call a rebuild at the same version "already the newest").
version=$upstream
[ "$commit" = unknown ] || version+="+git$(date -u -d "@$commit_epoch" +%Y%m%d.%H%M%S).$commit"
arch=$(dpkg --print-architecture)

root=.build/deb/root
rm -rf .build/deb
mkdir -p "$root/DEBIAN"
install -D -m 0755 "$binary" "$root/usr/bin/kscaler"
install -D -m 0644 infra/systemd/kscaler.service "$root/lib/systemd/system/kscaler.service"
install -D -m 0644 infra/systemd/kscaler.timer "$root/lib/systemd/system/kscaler.timer"
# The unit's own ExecStart line with the packaged path: the unit stays infra/systemd's file.
exec_start=$(grep '^ExecStart=/usr/local/bin/kscaler ' infra/systemd/kscaler.service) \
    || die "infra/systemd/kscaler.service has no ExecStart=/usr/local/bin/kscaler line to repoint"
install -d -m 0755 "$root/lib/systemd/system/kscaler.service.d"
printf '# The package installs kscaler in /usr/bin, not /usr/local/bin.\n[Service]\nExecStart=\n%s\n' \
    "${exec_start/\/usr\/local\/bin\//\/usr\/bin\/}" > "$root/lib/systemd/system/kscaler.service.d/package.conf"
chmod 0644 "$root/lib/systemd/system/kscaler.service.d/package.conf"
# The starter config `kscaler config init` writes: every key with its default and a comment,
# from the same schema the parser reads, so the packaged file cannot drift from the binary.
# Its "<required: …>" values make `config check` (and the service) refuse it until filled.
install -d -m 0755 "$root/etc/kscaler"
"$binary" config init --output "$root/etc/kscaler/config.yaml"
chmod 0644 "$root/etc/kscaler/config.yaml"
install -D -m 0644 infra/systemd/kscaler.env.example "$root/etc/kscaler/kscaler.env"

install -d -m 0755 "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
    "$root/usr/share/fish/vendor_completions.d" "$root/usr/share/man/man1" "$root/usr/share/doc/kscaler"
# Completion scripts are sourced, not run: bash's loses the generator's #! line (as lintian asks).
"$binary" --generate-completion-script bash | sed '1{/^#!/d}' > "$root/usr/share/bash-completion/completions/kscaler"
"$binary" --generate-completion-script zsh > "$root/usr/share/zsh/vendor-completions/_kscaler"
"$binary" --generate-completion-script fish > "$root/usr/share/fish/vendor_completions.d/kscaler.fish"
# The generator keeps the blank lines of the help's discussions, which roff warns about (and
# lintian with it); in mdoc a paragraph break is .Pp.
sed 's/^$/.Pp/' "$plugin_out/kscaler.1" | gzip -9n > "$root/usr/share/man/man1/kscaler.1.gz"
install -m 0644 infra/deb/copyright "$root/usr/share/doc/kscaler/copyright"
cat > .build/deb/changelog <<EOF
kscaler ($version) unstable; urgency=medium

  * Built from commit $commit.

 -- $maintainer  $(LC_ALL=C date -u -R -d "@$commit_epoch")
EOF
gzip -9n < .build/deb/changelog > "$root/usr/share/doc/kscaler/changelog.gz"
install -D -m 0644 infra/deb/lintian-overrides "$root/usr/share/lintian/overrides/kscaler"
find "$root/usr/share" "$root/lib" "$root/etc" -type f -exec chmod 0644 {} +

for script in postinst prerm postrm; do
    install -m 0755 "infra/deb/$script" "$root/DEBIAN/$script"
done
printf '/etc/kscaler/config.yaml\n/etc/kscaler/kscaler.env\n' > "$root/DEBIAN/conffiles"

# dpkg-shlibdeps wants a debian/control naming the package; it lives in a scratch directory.
mkdir -p .build/deb/shlibs/debian
printf 'Source: kscaler\n\nPackage: kscaler\nArchitecture: any\n' > .build/deb/shlibs/debian/control
shlibs=$(cd .build/deb/shlibs && dpkg-shlibdeps -O "$OLDPWD/$root/usr/bin/kscaler" 2>/dev/null) \
    || die "dpkg-shlibdeps failed on $root/usr/bin/kscaler"
depends=${shlibs#shlibs:Depends=}
if [ -z "$depends" ] || [ "$depends" = "$shlibs" ]; then die "dpkg-shlibdeps printed '$shlibs'"; fi

installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<EOF
Package: kscaler
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $depends, ca-certificates
Recommends: tzdata
Section: admin
Priority: optional
Description: run-once node autoscaler for self-managed Kubernetes on EC2
 kscaler scales the EC2 worker nodes of a k3s or kubeadm cluster. Each run,
 started by the systemd timer this package ships (left disabled), takes a
 lease in DynamoDB, reads Prometheus, EC2 and the Kubernetes API, decides,
 launches or drains and terminates instances, records what it did, and exits.
 .
 Edit /etc/kscaler/config.yaml and kscaler.env, check with "kscaler plan",
 then "systemctl enable --now kscaler.timer".
EOF
(cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' \
    | LC_ALL=C sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

# dist/ keeps the last package only, so `apt install ./dist/kscaler_*.deb` names one file.
mkdir -p dist
rm -f dist/kscaler_*.deb
deb=dist/kscaler_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
printf '%s\n' "$deb"
