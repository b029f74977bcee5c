#!/usr/bin/env bash
# Fetch and unpack a Debian source package of Ruby into a cache folder
# outside the repository, for generate.sh to configure and probe.
#
# Usage: fetch-source.sh PACKAGE SUITE [VERSION]
#   fetch-source.sh ruby3.1 bookworm
#   fetch-source.sh ruby2.7 bullseye
#   fetch-source.sh ruby3.3 trixie
#   fetch-source.sh ruby3.4 experimental
#
# Adds a deb-src entry for SUITE in a file of its own under
# /etc/apt/sources.list.d/ (so it needs root), runs `apt-get update`, and
# runs `apt-get source` in $RBPROF_RUBY_SRC/SUITE, where RBPROF_RUBY_SRC
# defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/rbprof/ruby-src. Prints the
# path of the unpacked tree on the last line of stdout. A tree already in
# the cache is reused without network access.
#
# Pick the suite the target's binary package came from (`apt-cache policy
# PACKAGE` shows it): bookworm's ruby3.1 is installed from
# bookworm-security, whose source carries patches that bookworm's lacks.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
    echo "usage: $0 PACKAGE SUITE [VERSION]" >&2
    exit 2
fi

package=$1
suite=$2
version=${3:-}
cache=${RBPROF_RUBY_SRC:-${XDG_CACHE_HOME:-$HOME/.cache}/rbprof/ruby-src}/$suite
mkdir -p "$cache"

# Prints the unpacked tree of $package in the cache (the newest by
# version if several are there), or nothing.
find_cached_tree() {
    local dsc best="" best_version=""
    for dsc in "$cache"/"${package}"_*.dsc; do
        [[ -e $dsc ]] || continue
        local v
        v=$(sed -n 's/^Version: //p' "$dsc")
        if [[ -n $version && $v != "$version" ]]; then
            continue
        fi
        if [[ -z $best_version ]] || dpkg --compare-versions "$v" gt "$best_version"; then
            best=$dsc
            best_version=$v
        fi
    done
    [[ -n $best ]] || return 0
    # dpkg-source unpacks into PACKAGE-UPSTREAM, the version without
    # epoch and Debian revision.
    local upstream=${best_version#*:}
    upstream=${upstream%-*}
    if [[ -d $cache/$package-$upstream ]]; then
        echo "$cache/$package-$upstream"
    fi
}

tree=$(find_cached_tree)
if [[ -n $tree ]]; then
    echo "using cached source: $tree" >&2
    echo "$tree"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "error: adding a deb-src entry needs root; run as root or add one for '$suite' by hand" >&2
    exit 1
fi

# The security suites live under a different archive path.
case $suite in
    *-security) uri=http://deb.debian.org/debian-security ;;
    *) uri=http://deb.debian.org/debian ;;
esac

list=/etc/apt/sources.list.d/rbprof-src-$suite.sources
if [[ ! -e $list ]]; then
    cat >"$list" <<EOF
# Source packages for rbprof's layout generator (tools/layoutgen).
Types: deb-src
URIs: $uri
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    echo "added $list" >&2
fi

apt-get update >&2

spec=$package
if [[ -n $version ]]; then
    spec="$package=$version"
elif [[ $suite != */* ]]; then
    # Without a version, apt picks the highest one from all deb-src
    # entries; pin the suite so the fetched tree is the one requested.
    spec="$package/$suite"
fi

(cd "$cache" && apt-get source --only-source "$spec") >&2

tree=$(find_cached_tree)
if [[ -z $tree ]]; then
    echo "error: apt-get source ran, but no unpacked tree of $package is in $cache" >&2
    exit 1
fi
echo "$tree"
