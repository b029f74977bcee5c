#!/usr/bin/env bash
# Build rbprof's container image without a container engine: a minimal
# Debian root file system from mmdebstrap plus the single executable, as an
# OCI image layout written by umoci. The image matches the Dockerfile's
# runtime stage: ENTRYPOINT ["/rbprof"], CMD ["sidecar"], port 6060.
#
# Usage: scripts/build-image.sh [options]
#   --sea PATH       the single executable (default: dist-sea/rbprof, which
#                    `npm run build && npm run build:sea` writes)
#   --output DIR     the OCI image layout to write (default: dist-image/oci);
#                    an existing one is replaced
#   --tag TAG        the image's tag in the layout (default: the version in
#                    package.json)
#   --suite SUITE    the Debian suite (default: this machine's
#                    VERSION_CODENAME from /etc/os-release)
#   --sources FILE   the apt sources for mmdebstrap (default: this machine's
#                    /etc/apt/sources.list.d/debian.sources, else
#                    /etc/apt/sources.list)
#   --no-cache       build the root file system again even if it is cached
#
# The root file system is cached as a tarball in
# ${RBPROF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rbprof}/image, keyed by the
# suite, the sources and the mmdebstrap options. A cached one does not get
# the archive's later updates: pass --no-cache for those.
#
# Needs root (mmdebstrap's root mode and umoci keep the files' owners),
# mmdebstrap and umoci (Debian packages of the same names).
# Prints the compressed size of each layer and their sum at the end.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
readonly REPO=$repo
# Documentation, manuals and translations stay out, as in Debian's slim
# images (debuerreotype's slimify lists), but copyright files stay.
readonly DPKG_OPTIONS=(
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/groff/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/lintian/overrides/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-include=/usr/share/locale/locale.alias'
    --dpkgopt='path-exclude=/usr/share/man/*'
)
# minbase is Debian's Essential set plus apt, the base of Debian's slim
# images. Node needs libstdc++6 beyond it. The merged-usr hook makes /bin,
# /lib and /sbin links into /usr, as in Debian 12, without installing the
# usrmerge package, which would pull in perl.
readonly MMDEBSTRAP_OPTIONS=(
    --variant=minbase
    --include=libstdc++6
    --hook-dir=/usr/share/mmdebstrap/hooks/maybe-merged-usr
    "${DPKG_OPTIONS[@]}"
)
readonly PORT=6060

log() {
    printf 'build-image: %s\n' "$*" >&2
}

die() {
    printf 'build-image: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

default_suite() {
    # shellcheck disable=SC1091
    (. /etc/os-release && echo "${VERSION_CODENAME:-}")
}

default_sources() {
    local file
    for file in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
        if [[ -s $file ]]; then
            echo "$file"
            return 0
        fi
    done
    return 1
}

# Prints the sizes of a manifest's layers, one per line. umoci writes the
# manifest as one line of JSON, and only layer entries follow "layers".
layer_sizes() {
    sed -e 's/.*"layers":\[//' "$1" | grep -o '"size":[0-9]*' | cut -d: -f2
}

sea=$REPO/dist-sea/rbprof
output=$REPO/dist-image/oci
tag=
suite=
sources=
use_cache=1
while (($# > 0)); do
    case $1 in
        --sea) sea=${2:?--sea needs a path}; shift 2 ;;
        --output) output=${2:?--output needs a directory}; shift 2 ;;
        --tag) tag=${2:?--tag needs a value}; shift 2 ;;
        --suite) suite=${2:?--suite needs a value}; shift 2 ;;
        --sources) sources=${2:?--sources needs a file}; shift 2 ;;
        --no-cache) use_cache=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

[[ $(id -u) == 0 ]] || die "needs root for mmdebstrap and umoci; run it with sudo"
for tool in mmdebstrap umoci sha256sum; do
    command -v "$tool" >/dev/null ||
        die "$tool is missing; install it with: apt-get install mmdebstrap umoci"
done
[[ -x $sea ]] || die "$sea is missing; run npm run build && npm run build:sea"
if [[ -z $tag ]]; then
    tag=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$REPO/package.json")
fi
[[ -n $suite ]] || suite=$(default_suite)
[[ -n $suite ]] || die "cannot tell this machine's Debian suite; pass --suite"
if [[ -z $sources ]]; then
    sources=$(default_sources) || die "no apt sources found; pass --sources FILE"
fi
[[ -r $sources ]] || die "cannot read the apt sources $sources"

cache=${RBPROF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rbprof}/image
key=$( (
    echo "$suite"
    printf '%s\n' "${MMDEBSTRAP_OPTIONS[@]}"
    cat "$sources"
) | sha256sum | cut -c1-16)
rootfs=$cache/rootfs-$suite-$key.tar

work=$(mktemp -d "${TMPDIR:-/tmp}/rbprof-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- the Debian layer's files ------------------------------------------------
if ((use_cache)) && [[ -s $rootfs ]]; then
    log "using the cached root file system $rootfs"
else
    log "creating a $suite root file system with mmdebstrap from $sources"
    mkdir -p "$cache"
    if ! mmdebstrap "${MMDEBSTRAP_OPTIONS[@]}" --format=tar \
        "$suite" "$work/rootfs.tar" "$sources" >"$work/mmdebstrap.log" 2>&1; then
        tail -n 40 "$work/mmdebstrap.log" >&2
        die "mmdebstrap failed; its last lines are above"
    fi
    mv "$work/rootfs.tar" "$rootfs"
fi

# --- the OCI image -------------------------------------------------------------
image=$output:$tag
bundle=$work/bundle
rm -rf "$output"
mkdir -p "$(dirname "$output")"
umoci init --layout "$output"
umoci new --image "$image"
umoci unpack --image "$image" "$bundle"

tar -xf "$rootfs" -C "$bundle/rootfs"
umoci repack --refresh-bundle --image "$image" \
    --history.created_by "mmdebstrap ${MMDEBSTRAP_OPTIONS[*]} $suite" "$bundle"

install -m 0755 "$sea" "$bundle/rootfs/rbprof"
umoci repack --image "$image" --history.created_by "install -m 0755 rbprof /rbprof" "$bundle"

revision=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
umoci config --image "$image" \
    --config.entrypoint /rbprof --config.cmd sidecar \
    --config.exposedports "$PORT/tcp" \
    --config.workingdir / \
    --config.user 0:0 \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.label org.opencontainers.image.title=rbprof \
    --config.label "org.opencontainers.image.description=Sampling profiler for running Ruby (MRI) processes" \
    --config.label "org.opencontainers.image.version=$tag" \
    --config.label "org.opencontainers.image.revision=$revision" \
    --config.label org.opencontainers.image.licenses=MIT
umoci gc --layout "$output"

# --- sizes ---------------------------------------------------------------------
manifest_digest=$(grep -o '"digest":"sha256:[0-9a-f]*"' "$output/index.json" | head -1 | cut -d: -f3 | tr -d '"')
manifest=$output/blobs/sha256/$manifest_digest
total=0
index=0
for size in $(layer_sizes "$manifest"); do
    index=$((index + 1))
    log "layer $index: $size bytes compressed"
    total=$((total + size))
done
log "wrote $image: $index layers, $total bytes ($((total / 1048576)) MiB) compressed"
