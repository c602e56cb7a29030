#!/usr/bin/env bash
# The shipped binary, built once for every package made here (scripts/package-deb.sh,
# scripts/package-lambda.sh): a release build with the Swift standard library linked statically,
# then a stripped copy. The unstripped binary stays beside it for profilers.
#
#   scripts/build-release.sh      # prints the stripped binary's path: .build/dist/kscaler
#
# Its own scratch directory, .build/static: --static-swift-stdlib changes every compile command,
# so sharing .build/release with the plain release build (the tests' binary, and what the
# generate-manual plugin builds) would recompile everything each time one follows the other.
# Here a second call costs seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"

build=(swift build -c release --static-swift-stdlib --scratch-path .build/static)
"${build[@]}" --product kscaler >&2
built="$("${build[@]}" --show-bin-path)/kscaler"
stripped=.build/dist/kscaler
mkdir -p "$(dirname "$stripped")"
# As dh_strip does: the symbol table and the compilers' .comment section go.
strip --remove-section=.comment --remove-section=.note -o "$stripped.new" "$built"
chmod 0755 "$stripped.new"
mv "$stripped.new" "$stripped"
printf '%s\n' "$stripped"
