#!/usr/bin/env bash
# Provide the Ruby interpreters that rbprof's tests profile, check that each
# one runs a workload, and write a manifest of them.
#
# Usage: scripts/test-rubies.sh [--only NAME[,NAME...]]
#
# Interpreters, by manifest name (short names for --only in brackets):
#   3.1-debian         [3.1]  bookworm's ruby3.1, installed with apt-get
#   2.7-debian         [2.7]  bullseye's ruby2.7 .debs, extracted
#   3.3-debian         [3.3]  trixie's ruby3.3 .debs with trixie's glibc
#   3.4-debian         [3.4]  experimental's ruby3.4 .debs with trixie's glibc
#   3.3-source-shared  [source-shared]  upstream source, --enable-shared, YJIT
#   3.3-source-static  [source-static]  upstream source, --disable-shared
# "source" selects both source builds.
#
# Everything is cached in ${RBPROF_RUBIES:-$HOME/.cache/rbprof/rubies}, so a
# second run only checks the interpreters and rewrites the manifest.
# RBPROF_BUILD_JOBS sets make's job count for the source builds (default:
# nproc). Needs root for apt-get unless everything selected is cached.
#
# The manifest, $RBPROF_RUBIES/manifest.json, is a JSON array with one entry
# per interpreter that passed its checks in this run:
#   {"name": "2.7-debian", "version": "2.7.4", "ruby": "/abs/ruby2.7",
#    "env": {"LD_LIBRARY_PATH": "...", "RUBYLIB": "..."},
#    "args": ["--disable-gems"], "kind": "debian-extracted", "yjit": false,
#    "wrapper": "/abs/bin/ruby-2.7-debian"}
# Running `env` + `ruby` + `args` + SCRIPT starts a workload, and so does
# `wrapper SCRIPT`, which sets the same environment and execs the same
# binary, so the profiled process is the interpreter itself.
#
# Exits 1 if any selected interpreter failed (after printing what failed and
# writing the manifest of the others), 2 on a usage error.
set -euo pipefail

readonly ALL_NAMES=(
    3.1-debian 2.7-debian 3.3-debian 3.4-debian
    3.3-source-shared 3.3-source-static
)
# The libraries that trixie's and experimental's Ruby packages need from
# trixie, because their binaries require glibc 2.38 and bookworm has 2.36.
readonly TRIXIE_LIBS=(libc6 libgmp10 libcrypt1 libffi8 zlib1g libyaml-0-2)
# The Debian source package whose upstream tarball the source builds use.
readonly SOURCE_PACKAGE=ruby3.3
readonly SOURCE_SUITE=trixie
readonly ARCH_TRIPLET=x86_64-linux-gnu
# Seconds to wait for a workload to print its "ready PID" line.
readonly READY_TIMEOUT=60

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
readonly REPO=$repo
readonly WORKLOAD=$REPO/test/workloads/threads.rb

log() {
    printf 'test-rubies: %s\n' "$*" >&2
}

die() {
    printf 'test-rubies: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

# Prints the manifest names that one --only item selects.
expand_name() {
    case $1 in
        3.1 | 2.7 | 3.3 | 3.4) echo "$1-debian" ;;
        source-shared | source-static) echo "3.3-$1" ;;
        source) printf '%s\n' 3.3-source-shared 3.3-source-static ;;
        *)
            local name
            for name in "${ALL_NAMES[@]}"; do
                if [[ $1 == "$name" ]]; then
                    echo "$name"
                    return 0
                fi
            done
            return 1
            ;;
    esac
}

# --- apt ------------------------------------------------------------------

readonly APT_SOURCES=/etc/apt/sources.list.d/rbprof-test-rubies.sources
readonly APT_PREFERENCES=/etc/apt/preferences.d/rbprof-test-rubies
# The lock timeout lets a run wait for another apt-get on the machine. The
# sandbox user is root because _apt cannot write into a cache under /root.
readonly APT_OPTIONS=(-q -o DPkg::Lock::Timeout=600 -o APT::Sandbox::User=root)

require_root() {
    if [[ $(id -u) -ne 0 ]]; then
        die "$1 needs root (apt-get); run as root, or run once as root to fill the cache"
    fi
}

# Adds binary entries for bullseye, trixie and experimental, pinned to
# priority -1 so that apt-get install never takes a package from them.
# This script only runs apt-get download on them.
write_apt_sources() {
    if [[ ! -e $APT_PREFERENCES ]]; then
        cat >"$APT_PREFERENCES" <<'EOF'
# rbprof's test interpreters (scripts/test-rubies.sh) only download .debs
# from these suites; nothing from them is ever to be installed.
Package: *
Pin: release n=bullseye
Pin-Priority: -1

Package: *
Pin: release n=trixie
Pin-Priority: -1

Package: *
Pin: release a=experimental
Pin-Priority: -1
EOF
        log "added $APT_PREFERENCES"
    fi
    if [[ ! -e $APT_SOURCES ]]; then
        cat >"$APT_SOURCES" <<'EOF'
# Binary packages for rbprof's test interpreters (scripts/test-rubies.sh),
# pinned to priority -1 in /etc/apt/preferences.d/rbprof-test-rubies.
Types: deb
URIs: http://deb.debian.org/debian
Suites: bullseye trixie experimental
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        log "added $APT_SOURCES"
    fi
}

# Runs apt-get update on the first call in a run. The marker is a file
# because each interpreter is provided in a subshell.
apt_update_once() {
    [[ -e $RUN_TMP/apt-updated ]] && return 0
    require_root "apt-get update"
    write_apt_sources
    log "running apt-get update"
    apt-get "${APT_OPTIONS[@]}" update >&2 || die "apt-get update failed"
    touch "$RUN_TMP/apt-updated"
}

apt_install() {
    apt_update_once
    log "installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTIONS[@]}" install -y \
        --no-install-recommends "$@" >&2 || die "apt-get install $* failed"
}

# Prints the versions of binary package $1 in suite $2, newest first.
suite_versions() {
    apt-cache madison "$1" | awk -F' *[|] *' -v suite="$2" '
        index($3, " " suite "/") && $3 ~ / Packages$/ { print $2 }'
}

# Downloads .debs ($3...) at version $2 into directory $1.
download_debs() {
    local dir=$1 version=$2
    shift 2
    local specs=() package
    for package in "$@"; do
        specs+=("$package=$version")
    done
    (cd "$dir" && apt-get "${APT_OPTIONS[@]}" download "${specs[@]}" >&2)
}

# Downloads each package ($3...) at the version that suite $2 offers into
# directory $1.
download_suite_debs() {
    local dir=$1 suite=$2
    shift 2
    local specs=() package
    for package in "$@"; do
        specs+=("$package/$suite")
    done
    (cd "$dir" && apt-get "${APT_OPTIONS[@]}" download "${specs[@]}" >&2) ||
        die "apt-get download ${specs[*]} failed"
}

extract_debs() {
    local debs_dir=$1 root=$2 deb
    for deb in "$debs_dir"/*.deb; do
        dpkg -x "$deb" "$root" || die "dpkg -x $deb failed"
    done
}

# --- manifest entries -----------------------------------------------------

# Set by each provide_* function for the current interpreter.
ENTRY_RUBY=""
ENTRY_KIND=""
ENTRY_ENV=()  # KEY=VALUE strings
ENTRY_ARGS=()

json_string() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\t'/\\t}
    s=${s//$'\n'/\\n}
    printf '"%s"' "$s"
}

# Writes bin/ruby-NAME, which sets the entry's environment and execs its
# binary with its arguments, so the wrapper's PID becomes Ruby's.
write_wrapper() {
    local name=$1 wrapper=$CACHE/bin/ruby-$1 pair
    mkdir -p "$CACHE/bin"
    {
        echo '#!/bin/bash'
        echo "# Runs rbprof's test interpreter $name (written by scripts/test-rubies.sh)."
        for pair in "${ENTRY_ENV[@]}"; do
            printf 'export %s=%q\n' "${pair%%=*}" "${pair#*=}"
        done
        printf 'exec %q' "$ENTRY_RUBY"
        if [[ ${#ENTRY_ARGS[@]} -gt 0 ]]; then
            printf ' %q' "${ENTRY_ARGS[@]}"
        fi
        printf ' "$@"\n'
    } >"$wrapper.tmp"
    chmod 755 "$wrapper.tmp"
    mv "$wrapper.tmp" "$wrapper"
}

# Starts the threads workload through the wrapper, waits for its
# "ready PID" line, checks that PID is the started process and that the
# process runs the entry's binary, then kills it.
check_workload() {
    local name=$1 wrapper=$CACHE/bin/ruby-$1 stderr_file=$RUN_TMP/$1-workload.err
    local line="" pid exe status=0
    coproc WORKLOAD_PROC { exec "$wrapper" "$WORKLOAD" 2>"$stderr_file"; }
    pid=$WORKLOAD_PROC_PID
    read -r -t "$READY_TIMEOUT" -u "${WORKLOAD_PROC[0]}" line || status=$?
    exe=$(readlink "/proc/$pid/exe" || true)
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true

    if [[ $status -gt 128 ]]; then
        die "$name: $WORKLOAD printed no line within ${READY_TIMEOUT}s"
    fi
    if [[ $line != "ready $pid" ]]; then
        cat "$stderr_file" >&2
        die "$name: expected 'ready $pid' from $WORKLOAD, got '$line'"
    fi
    if [[ $exe != "$(readlink -f "$ENTRY_RUBY")" ]]; then
        die "$name: the workload's process runs '$exe', expected $ENTRY_RUBY (does the wrapper exec?)"
    fi
}

# Checks the interpreter and writes its manifest entry to $RUN_TMP/entries.
# $2 is the required YJIT state, or "any" to record whatever the build has.
check_and_record() {
    local name=$1 required_yjit=$2 wrapper=$CACHE/bin/ruby-$1
    local version yjit_output yjit=false

    version=$("$wrapper" -e 'print RUBY_VERSION') || die "$name: $wrapper -e 'print RUBY_VERSION' failed"
    if [[ $version != "${name%%-*}".* ]]; then
        die "$name: RUBY_VERSION is '$version', expected ${name%%-*}.x"
    fi

    check_workload "$name"

    # Ruby 2.7 rejects --yjit, and builds without YJIT warn and print false.
    yjit_output=$("$wrapper" --yjit -e 'print RubyVM::YJIT.enabled?' 2>/dev/null) || true
    if [[ $yjit_output == true ]]; then
        yjit=true
    fi
    if [[ $required_yjit != any && $yjit != "$required_yjit" ]]; then
        die "$name: ruby --yjit -e 'print RubyVM::YJIT.enabled?' printed '$yjit_output', expected $required_yjit"
    fi

    local env_json="" args_json="" pair arg
    for pair in "${ENTRY_ENV[@]}"; do
        env_json+="${env_json:+, }$(json_string "${pair%%=*}"): $(json_string "${pair#*=}")"
    done
    for arg in "${ENTRY_ARGS[@]}"; do
        args_json+="${args_json:+, }$(json_string "$arg")"
    done
    {
        printf '  {\n'
        printf '    "name": %s,\n' "$(json_string "$name")"
        printf '    "version": %s,\n' "$(json_string "$version")"
        printf '    "ruby": %s,\n' "$(json_string "$ENTRY_RUBY")"
        printf '    "env": {%s},\n' "$env_json"
        printf '    "args": [%s],\n' "$args_json"
        printf '    "kind": %s,\n' "$(json_string "$ENTRY_KIND")"
        printf '    "yjit": %s,\n' "$yjit"
        printf '    "wrapper": %s\n' "$(json_string "$wrapper")"
        printf '  }'
    } >"$RUN_TMP/entries/$name.json"
    log "$name: ok, Ruby $version, YJIT $yjit, $wrapper"
}

# --- Debian packages ------------------------------------------------------

provide_3.1-debian() {
    if [[ ! -x /usr/bin/ruby3.1 ]]; then
        apt_install ruby3.1
    fi
    ENTRY_RUBY=/usr/bin/ruby3.1
    ENTRY_KIND=debian-package
    ENTRY_ENV=()
    ENTRY_ARGS=()
    write_wrapper 3.1-debian
    check_and_record 3.1-debian any
}

# The compiled-in load path points at /usr/lib/ruby/X.Y.0, which bookworm
# lacks for these releases, so RUBYLIB points at the extracted library.
# --disable-gems keeps RubyGems, whose gem paths are missing too, from
# loading. The workloads use only core classes.
extracted_ruby_env() {
    local root=$1 api_version=$2
    ENTRY_ENV+=("RUBYLIB=$root/usr/lib/ruby/$api_version:$root/usr/lib/$ARCH_TRIPLET/ruby/$api_version")
    ENTRY_ARGS=(--disable-gems)
}

# bookworm's glibc runs bullseye's binaries, so LD_LIBRARY_PATH to the
# extracted libruby is enough.
provide_2.7-debian() {
    local dir=$CACHE/2.7-debian
    local root=$dir/root
    if [[ ! -e $dir/.complete ]]; then
        apt_update_once
        rm -rf "$dir"
        mkdir -p "$dir/debs" "$root"
        download_suite_debs "$dir/debs" bullseye ruby2.7 libruby2.7
        extract_debs "$dir/debs" "$root"
        touch "$dir/.complete"
    fi
    ENTRY_RUBY=$root/usr/bin/ruby2.7
    ENTRY_KIND=debian-extracted
    ENTRY_ENV=("LD_LIBRARY_PATH=$root/usr/lib/$ARCH_TRIPLET")
    extracted_ruby_env "$root" 2.7.0
    write_wrapper 2.7-debian
    check_and_record 2.7-debian any
}

# Points the extracted ruby binary at trixie's dynamic loader and
# libraries, which the extracted root contains, and fails if any library
# is still missing. The binary gets a DT_RPATH, not a DT_RUNPATH, because
# DT_RPATH also applies to the dependencies of libruby and of the
# extensions it loads, so libruby stays as Debian built it.
patch_for_trixie_glibc() {
    local root=$1 ruby=$2
    local loader=$root/usr/lib/$ARCH_TRIPLET/ld-linux-x86-64.so.2
    local lib_dirs=$root/usr/lib/$ARCH_TRIPLET
    [[ -x $loader ]] || die "trixie's libc6 has no $loader"
    if [[ -d $root/lib/$ARCH_TRIPLET ]]; then
        lib_dirs+=:$root/lib/$ARCH_TRIPLET
    fi
    patchelf --set-interpreter "$loader" --force-rpath --set-rpath "$lib_dirs" "$ruby" ||
        die "patchelf failed on $ruby"

    local listing
    listing=$("$loader" --list "$ruby" 2>&1) || die "$loader --list $ruby failed: $listing"
    if [[ $listing == *"not found"* ]]; then
        die "libraries missing for $ruby: $listing"
    fi
}

# Provides trixie's 3.3 or experimental's 3.4, whose binaries need glibc
# 2.38 or newer. The newest version of the suite whose .debs download is
# taken.
provide_new_debian() {
    local release=$1 suite=$2
    local name=$release-debian
    local dir=$CACHE/$name
    local root=$dir/root
    local ruby=$root/usr/bin/ruby$release
    if [[ ! -e $dir/.complete ]]; then
        apt_update_once
        command -v patchelf >/dev/null || apt_install patchelf
        rm -rf "$dir"
        mkdir -p "$dir/debs" "$root"

        local version downloaded=""
        for version in $(suite_versions "ruby$release" "$suite"); do
            if download_debs "$dir/debs" "$version" "ruby$release" "libruby$release"; then
                downloaded=$version
                break
            fi
            log "ruby$release $version from $suite did not download; trying an older version"
            rm -f "$dir/debs"/*.deb
        done
        [[ -n $downloaded ]] || die "no version of ruby$release and libruby$release in $suite could be downloaded"
        download_suite_debs "$dir/debs" trixie "${TRIXIE_LIBS[@]}"
        extract_debs "$dir/debs" "$root"
        patch_for_trixie_glibc "$root" "$ruby"
        touch "$dir/.complete"
    fi
    ENTRY_RUBY=$ruby
    ENTRY_KIND=debian-extracted
    ENTRY_ENV=()
    extracted_ruby_env "$root" "$release.0"
    write_wrapper "$name"
    check_and_record "$name" any
}

provide_3.3-debian() {
    provide_new_debian 3.3 trixie
}

provide_3.4-debian() {
    provide_new_debian 3.4 experimental
}

# --- source builds --------------------------------------------------------

# Prints the path of rustc for --enable-yjit: $RUSTC, rustc on PATH,
# rustup's ~/.cargo/bin/rustc, or else Debian's rustc, which it installs.
find_rustc() {
    local candidate
    for candidate in "${RUSTC:-}" "$(command -v rustc || true)" "$HOME/.cargo/bin/rustc"; do
        if [[ -n $candidate && -x $candidate ]] && "$candidate" --version >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    apt_install rustc
    echo /usr/bin/rustc
}

install_build_deps() {
    local packages=(build-essential xz-utils libssl-dev libyaml-dev zlib1g-dev libffi-dev libgmp-dev)
    local missing=() package
    for package in "${packages[@]}"; do
        if ! dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$package")
        fi
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        apt_install "${missing[@]}"
    fi
}

# Prints the path of the unpacked upstream source, which both source builds
# share. The tarball is the orig tarball of Debian's source package, which
# is upstream's release tarball without the bundled gems' .gem files.
# Debian's patches are not applied.
prepare_source_tree() {
    local tree
    if [[ ! -e $CACHE/src/.complete ]]; then
        # fetch-source.sh runs apt-get update itself when it has to fetch.
        tree=$("$REPO/tools/layoutgen/fetch-source.sh" "$SOURCE_PACKAGE" "$SOURCE_SUITE" | tail -n 1) ||
            die "tools/layoutgen/fetch-source.sh $SOURCE_PACKAGE $SOURCE_SUITE failed"
        local upstream=${tree##*/"$SOURCE_PACKAGE"-}
        local tarballs=("$(dirname "$tree")/${SOURCE_PACKAGE}_$upstream.orig.tar."*)
        [[ -f ${tarballs[0]} ]] || die "no orig tarball of $SOURCE_PACKAGE $upstream beside $tree"

        rm -rf "$CACHE/src"
        mkdir -p "$CACHE/src"
        log "unpacking ${tarballs[0]}"
        tar -xf "${tarballs[0]}" -C "$CACHE/src" || die "unpacking ${tarballs[0]} failed"
        touch "$CACHE/src/.complete"
    fi
    tree=$(find "$CACHE/src" -mindepth 1 -maxdepth 1 -type d -name 'ruby-*' | head -n 1)
    [[ -x $tree/configure ]] || die "$tree/configure not found; remove $CACHE/src and rerun"
    echo "$tree"
}

# Runs one build step in directory $2 with its output in log $1, and prints
# the log's tail if the step fails.
run_logged() {
    local log_file=$1 dir=$2
    shift 2
    if ! (cd "$dir" && "$@") >"$log_file" 2>&1; then
        tail -n 40 "$log_file" >&2
        die "'$*' failed; the full output is in $log_file"
    fi
}

# Builds the upstream source out of tree into $CACHE/NAME, the prefix, and
# keeps the source tree, which the debug info refers to. Ruby's make
# install does not strip, so the symbols stay in the installed files.
#
# Debian's orig tarball leaves out the bundled gems' .gem files
# (Files-Excluded: gems/*-* in debian/copyright). With a base ruby, make
# install tries to download them from the network, so the builds are
# configured --without-baseruby, which a release tarball allows. make
# install then installs the bundled gems from the tarball's unpacked
# copies in .bundle/gems.
build_from_source() {
    local name=$1
    shift
    local prefix=$CACHE/$name
    local build=$CACHE/build/$name
    local logs=$CACHE/logs
    install_build_deps
    local src
    src=$(prepare_source_tree)

    rm -rf "$build" "$prefix"
    mkdir -p "$build" "$logs"
    local jobs=${RBPROF_BUILD_JOBS:-$(nproc)}
    log "$name: configuring ($*), log in $logs/$name-configure.log"
    run_logged "$logs/$name-configure.log" "$build" \
        "$src/configure" --prefix="$prefix" --disable-install-doc --without-baseruby "$@"
    log "$name: running make -j$jobs, log in $logs/$name-make.log"
    run_logged "$logs/$name-make.log" "$build" make -j"$jobs"
    log "$name: running make install"
    run_logged "$logs/$name-install.log" "$build" make install
    rm -rf "$build"
    touch "$prefix/.complete"
}

# Fails unless $1 has a symbol table and debug info, which strip removes.
require_symbols() {
    local sections
    sections=$(readelf -S -W "$1") || die "readelf -S $1 failed"
    [[ $sections == *" .symtab "* ]] || die "$1 has no .symtab (stripped)"
    [[ $sections == *" .debug_info "* ]] || die "$1 has no .debug_info (stripped)"
}

# The shared build is configured like the official Docker image of Ruby:
# --enable-shared, --disable-install-doc and --enable-yjit.
provide_3.3-source-shared() {
    local name=3.3-source-shared
    local prefix=$CACHE/$name
    if [[ ! -e $prefix/.complete ]]; then
        local rustc
        rustc=$(find_rustc)
        log "$name: YJIT uses $rustc ($("$rustc" --version))"
        # configure looks rustc up on PATH unless RUSTC is set.
        RUSTC=$rustc PATH=$(dirname "$rustc"):$PATH build_from_source "$name" --enable-shared --enable-yjit
    fi
    local libruby
    libruby=$(find "$prefix/lib" -maxdepth 1 -name 'libruby.so.*.*.*' | head -n 1)
    [[ -n $libruby ]] || die "$name: no libruby.so in $prefix/lib"
    require_symbols "$libruby"
    ENTRY_RUBY=$prefix/bin/ruby
    ENTRY_KIND=source-shared
    ENTRY_ENV=()
    ENTRY_ARGS=()
    write_wrapper "$name"
    check_and_record "$name" true
}

# The static build keeps the VM's symbols in the executable, which is what
# it is for, so YJIT (and the build time of its Rust code) is left out.
provide_3.3-source-static() {
    local name=3.3-source-static
    local prefix=$CACHE/$name
    if [[ ! -e $prefix/.complete ]]; then
        build_from_source "$name" --disable-shared --disable-yjit
    fi
    local dynamic
    dynamic=$(readelf -d -W "$prefix/bin/ruby") || die "readelf -d $prefix/bin/ruby failed"
    if [[ $dynamic == *libruby* ]]; then
        die "$name: $prefix/bin/ruby links a shared libruby"
    fi
    require_symbols "$prefix/bin/ruby"
    ENTRY_RUBY=$prefix/bin/ruby
    ENTRY_KIND=source-static
    ENTRY_ENV=()
    ENTRY_ARGS=()
    write_wrapper "$name"
    check_and_record "$name" false
}

# --- main -----------------------------------------------------------------

main() {
    local only="" only_given=0
    while [[ $# -gt 0 ]]; do
        case $1 in
            --only)
                [[ $# -ge 2 ]] || { echo "test-rubies: --only needs a list of names" >&2; exit 2; }
                only=$2
                only_given=1
                shift 2
                ;;
            --only=*)
                only=${1#--only=}
                only_given=1
                shift
                ;;
            -h | --help)
                usage
                exit 0
                ;;
            *)
                echo "test-rubies: unknown argument '$1'; see --help" >&2
                exit 2
                ;;
        esac
    done

    if [[ $only_given -eq 1 && -z $only ]]; then
        echo "test-rubies: --only needs a list of names" >&2
        exit 2
    fi
    local selected=()
    if [[ $only_given -eq 0 ]]; then
        selected=("${ALL_NAMES[@]}")
    else
        local item expanded
        local -A wanted=()
        IFS=, read -r -a items <<<"$only"
        for item in "${items[@]}"; do
            expanded=$(expand_name "$item") || {
                echo "test-rubies: unknown interpreter '$item' in --only; names: 3.1 2.7 3.3 3.4 source source-shared source-static, or ${ALL_NAMES[*]}" >&2
                exit 2
            }
            while read -r item; do
                wanted[$item]=1
            done <<<"$expanded"
        done
        # Keep the manifest in the order of ALL_NAMES.
        for item in "${ALL_NAMES[@]}"; do
            if [[ -n ${wanted[$item]:-} ]]; then
                selected+=("$item")
            fi
        done
    fi

    [[ -f $WORKLOAD ]] || die "workload $WORKLOAD not found"
    mkdir -p "${RBPROF_RUBIES:-$HOME/.cache/rbprof/rubies}"
    CACHE=$(cd "${RBPROF_RUBIES:-$HOME/.cache/rbprof/rubies}" && pwd -P)
    readonly CACHE

    # One run at a time per cache: a second run waits here.
    exec 9>"$CACHE/.lock"
    flock 9

    RUN_TMP=$(mktemp -d)
    readonly RUN_TMP
    trap 'rm -rf "$RUN_TMP"' EXIT
    mkdir -p "$RUN_TMP/entries"

    local name failed=()
    for name in "${selected[@]}"; do
        log "$name: providing"
        # A subshell per interpreter, so a failure ends that one only. set +e
        # keeps a failed subshell from ending the run, and the subshell turns
        # set -e back on for itself.
        set +e
        (
            set -e
            "provide_$name"
        )
        local status=$?
        set -e
        if [[ $status -ne 0 ]]; then
            failed+=("$name")
        fi
    done

    local manifest=$CACHE/manifest.json entry first=1
    {
        echo '['
        for name in "${selected[@]}"; do
            entry=$RUN_TMP/entries/$name.json
            [[ -e $entry ]] || continue
            [[ $first -eq 1 ]] || echo ','
            first=0
            cat "$entry"
        done
        echo
        echo ']'
    } >"$manifest.tmp"
    mv "$manifest.tmp" "$manifest"
    log "wrote $manifest"

    if [[ ${#failed[@]} -gt 0 ]]; then
        die "failed: ${failed[*]} (the manifest lists only the others)"
    fi
}

main "$@"
