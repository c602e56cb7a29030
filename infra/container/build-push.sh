#!/bin/bash
# Build the kscaler image, tag it with the git commit, push it to the stack's ECR repository and
# print the image URI to deploy as KScalerImage (infra/README.md, walk-through step 8).
#
#   infra/container/build-push.sh <repository URI>      # stack output ImageRepositoryUri
#
# Uses podman, or docker when podman is missing (ENGINE=docker to choose). The registry password
# goes from `aws ecr get-login-password` through a pipe into `login --password-stdin`: never in
# an argv, a file or the shell's history. The repository's tags are immutable: a commit is pushed
# once; a tree with uncommitted changes is refused, so a tag always names what was built.
set -euo pipefail

die() { printf 'build-push: %s\n' "$*" >&2; exit 1; }

repository=${1:-}
[[ $repository =~ ^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9._/-]+$ ]] \
  || die "usage: $0 <account>.dkr.ecr.<region>.amazonaws.com/<name> (the stack output ImageRepositoryUri)"
registry=${repository%%/*}
region=${registry#*.dkr.ecr.}
region=${region%%.*}

engine=${ENGINE:-}
if [ -z "$engine" ]; then
  if command -v podman >/dev/null; then engine=podman
  elif command -v docker >/dev/null; then engine=docker
  else die "neither podman nor docker is installed"
  fi
fi

top=$(git rev-parse --show-toplevel) || die "run inside the kscaler repository"
cd "$top"
[ -z "$(git status --porcelain -- Package.swift Sources Tests infra/container)" ] \
  || die "uncommitted changes in the sources: commit them first, the tag must name what is built"
tag=$(git rev-parse --short=12 HEAD)
image=$repository:$tag

case $engine in
  podman) "$engine" build -f infra/container/Containerfile --ignorefile infra/container/Containerfile.dockerignore -t "$image" . ;;
  *) DOCKER_BUILDKIT=1 "$engine" build -f infra/container/Containerfile -t "$image" . ;;
esac
aws ecr get-login-password --region "$region" | "$engine" login --username AWS --password-stdin "$registry"
"$engine" push "$image"
printf '%s\n' "$image"
