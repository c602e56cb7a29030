#!/usr/bin/env bash
# Packages kscaler for AWS Lambda's OS-only runtime provided.al2023 (README.md, "Lambda"):
#   .build/lambda/kscaler-lambda-<arch>.zip
#     bootstrap          the release binary (--static-swift-stdlib), stripped (scripts/build-release.sh,
#                        the same file the Debian package ships); started by Lambda
#                        with AWS_LAMBDA_RUNTIME_API set and no arguments, it runs `kscaler lambda`
#     lib/               the shared libraries it links that are not glibc (libcurl and its
#                        dependencies, libstdc++, libgcc_s): Lambda puts /var/task/lib on
#                        LD_LIBRARY_PATH, so these are used whatever the image carries
#     config.yaml        with --config FILE: the configuration, read from /var/task/config.yaml
#                        (set KSCALER_CONFIG=/var/task/config.yaml on the function, as the stack does)
#
#   scripts/package-lambda.sh [--config FILE] [--force]
#
# AL2023 has glibc 2.34. Everything in the zip must need no newer glibc symbol version, or the
# function fails at start with "version `GLIBC_2.35' not found". The script checks and refuses
# otherwise (--force packages anyway, for inspecting the zip). A binary built on Debian 12
# (glibc 2.36) fails the check: build on Amazon Linux 2023 (or any glibc <= 2.34 host) with the
# Swift toolchain for it. Only the host's architecture is built: cross-compiling needs a Swift
# SDK for the other one (`swift sdk list`).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"

config=""
force=false
while [ $# -gt 0 ]; do
    case "$1" in
        --config) config=$2; shift 2 ;;
        --force) force=true; shift ;;
        *) echo "usage: $0 [--config FILE] [--force]" >&2; exit 64 ;;
    esac
done
[ -z "$config" ] || [ -r "$config" ] || { echo "package-lambda: cannot read $config" >&2; exit 2; }

# provided.al2023's glibc; Lambda's architectures are x86_64 and arm64.
max_glibc=2.34
case "$(uname -m)" in
    x86_64) arch=x86_64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "package-lambda: Lambda runs x86_64 or arm64, not $(uname -m)" >&2; exit 1 ;;
esac

# The stripped binary every package ships (scripts/build-release.sh); ldd reads the same file.
binary=$(scripts/build-release.sh)
stage=.build/lambda/stage-$arch
zip_path=.build/lambda/kscaler-lambda-$arch.zip
rm -rf "$stage" "$zip_path"
mkdir -p "$stage/lib"
install -m 0755 "$binary" "$stage/bootstrap"

# Every shared library the binary loads, except glibc's own (the image's glibc must be used).
ldd "$binary" | awk '/=> \// { print $1, $3 }' | while read -r name path; do
    case "$name" in
        libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | libresolv.so.* | ld-linux*) ;;
        *) cp -L "$path" "$stage/lib/$name" ;;
    esac
done
[ -z "$config" ] || install -m 0644 "$config" "$stage/config.yaml"

# The newest glibc symbol version anything in the zip asks for.
needed=$(for file in "$stage/bootstrap" "$stage"/lib/*; do objdump -T "$file"; done \
    | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -1)
if [ "$(printf '%s\n%s\n' "$needed" "$max_glibc" | sort -V | tail -1)" != "$max_glibc" ]; then
    echo "package-lambda: the build needs glibc $needed, provided.al2023 has $max_glibc; these ask for more:" >&2
    for file in "$stage/bootstrap" "$stage"/lib/*; do
        objdump -T "$file" | grep -oE 'GLIBC_[0-9.]+' | sed 's/GLIBC_//' | sort -Vu | while read -r version; do
            [ "$(printf '%s\n%s\n' "$version" "$max_glibc" | sort -V | tail -1)" = "$max_glibc" ] || echo "  $(basename "$file"): GLIBC_$version" >&2
        done
    done
    echo "package-lambda: build on Amazon Linux 2023 (glibc $max_glibc) instead; --force packages anyway" >&2
    $force || exit 1
fi

contents=(bootstrap lib)
[ -z "$config" ] || contents+=(config.yaml)
(cd "$stage" && zip -q -r -X "../$(basename "$zip_path")" "${contents[@]}")
libraries=$(find "$stage/lib" -type f | wc -l)
echo "package-lambda: $zip_path ($(du -h "$zip_path" | cut -f1); bootstrap $(du -h "$stage/bootstrap" | cut -f1), $libraries libraries in lib/, newest glibc symbol $needed)"
