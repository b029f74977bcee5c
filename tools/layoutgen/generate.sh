#!/usr/bin/env bash
# Generate one entry of crates/rbprof-core/layouts/ruby.json from a Ruby
# source tree, and print it or merge it into the table.
#
# Usage: generate.sh [options] SOURCE_TREE
#
# Configure options (exactly one of the first three; they must match the
# target's build, because configure results and CPPFLAGS such as
# -DUSE_RVARGC=1 change struct layouts):
#   --configure-from-ruby RUBY  the configure_args of an installed ruby,
#                               from RbConfig; also compares the generated
#                               ruby/config.h with that ruby's
#   --configure-from-debian     the configure_options of the tree's
#                               debian/rules, as Debian's build passes them
#   --configure-args ARGS       these shell words
#   --configure-extra ARGS      shell words appended to any of the above,
#                               e.g. ac_cv_header_valgrind_memcheck_h=no
#                               where this machine has a header that the
#                               target's builder lacked
#
# Entry options:
#   --through VERSION           last release the entry covers (required)
#   --from VERSION              first release (default: MAJOR.MINOR.0)
#   --verified true|false       whether a live process confirmed the entry
#                               (default: false)
#   --shared-because TEXT       replaces the default reason
#   --table FILE                merge the entry into FILE, replacing an
#                               entry with the same "from"
#   --build-dir DIR             out-of-tree build folder
#                               (default: SOURCE_TREE/rbprof-build)
#
# Steps:
#   0. In a git checkout, which has no configure script, generate it:
#      with the tree's autogen.sh from 3.0, else with $AUTOCONF (default
#      autoconf; releases before 2.7 need AUTOCONF=autoconf2.69).
#   1. Run SOURCE_TREE/configure in the build folder, unless the folder
#      was configured with the same arguments. A git checkout also needs
#      --with-baseruby, since make incs then generates more files.
#   2. Run `make incs`, which generates headers such as id.h and probes.h.
#   3. Copy the few definitions that live only in .c files into
#      rbprof-from-c-files.h.
#   4. Test-compile each optional member named in probe.c.
#   5. Compile and run the probe.
# None of the steps needs network access.
#
# The probe runs on this machine, so the host must be x86_64 Linux, the
# platform the table describes.
set -euo pipefail

script_dir=$(cd "$(dirname "$0")" && pwd)
generator_line="tools/layoutgen/generate.sh: configures the Ruby source tree like the target build, runs make incs, compiles probe.c against the internal headers with the configured C compiler on x86_64 Linux and runs it"

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

fail() {
    echo "error: $*" >&2
    exit 1
}

configure_mode=""
configure_source=""
configure_extra=""
from=""
through=""
verified=false
shared_because=""
table=""
build=""
tree=""

while [[ $# -gt 0 ]]; do
    case $1 in
        --configure-from-ruby | --configure-from-debian | --configure-args)
            [[ -z $configure_mode ]] || fail "$1: configure options were already given; pass only one of --configure-from-ruby, --configure-from-debian and --configure-args"
            case $1 in
                --configure-from-ruby) configure_mode=ruby; configure_source=${2:?}; shift 2 ;;
                --configure-from-debian) configure_mode=debian; shift ;;
                --configure-args) configure_mode=args; configure_source=${2?}; shift 2 ;;
            esac
            ;;
        --configure-extra) configure_extra=${2?}; shift 2 ;;
        --from) from=${2:?}; shift 2 ;;
        --through) through=${2:?}; shift 2 ;;
        --verified) verified=${2:?}; shift 2 ;;
        --shared-because) shared_because=${2:?}; shift 2 ;;
        --table) table=${2:?}; shift 2 ;;
        --build-dir) build=${2:?}; shift 2 ;;
        -h | --help) usage ;;
        -*) echo "error: unknown option '$1'" >&2; usage ;;
        *)
            [[ -z $tree ]] || fail "more than one source tree given: '$tree' and '$1'"
            tree=$1
            shift
            ;;
    esac
done

[[ -n $tree ]] || usage
[[ -n $configure_mode ]] || fail "missing configure options: pass --configure-from-ruby, --configure-from-debian or --configure-args"
[[ -n $through ]] || fail "missing --through: the last release this entry covers, e.g. 3.1.7"
[[ $verified == true || $verified == false ]] || fail "--verified must be true or false, not '$verified'"
[[ $(uname -s) == Linux && $(uname -m) == x86_64 ]] ||
    fail "the probe describes the machine it runs on, which must be x86_64 Linux, not $(uname -s) $(uname -m)"
command -v jq >/dev/null || fail "jq not found; install it (apt-get install jq)"

tree=$(cd "$tree" && pwd)
[[ -f $tree/vm_core.h && (-x $tree/configure || -f $tree/configure.ac) ]] ||
    fail "$tree is not a Ruby source tree: it lacks vm_core.h, or both configure and configure.ac"
build=${build:-$tree/rbprof-build}
mkdir -p "$build"
build=$(cd "$build" && pwd)

# The Ruby version of the tree, from its headers.
read_define() {
    sed -n "s/^#[ \t]*define[ \t]\{1,\}$1[ \t]\{1,\}\([0-9]\{1,\}\).*/\1/p" "$2" | head -n 1
}
major=$(read_define RUBY_API_VERSION_MAJOR "$tree/include/ruby/version.h")
minor=$(read_define RUBY_API_VERSION_MINOR "$tree/include/ruby/version.h")
teeny=$(read_define RUBY_VERSION_TEENY "$tree/version.h")
if [[ -z $teeny ]]; then
    # Before 2.7, version.h defines only the string: RUBY_VERSION "2.5.9".
    teeny=$(sed -n 's/^#[ \t]*define[ \t]\{1,\}RUBY_VERSION[ \t]\{1,\}"[0-9]\{1,\}\.[0-9]\{1,\}\.\([0-9]\{1,\}\)".*/\1/p' "$tree/version.h" | head -n 1)
fi
[[ -n $major && -n $minor && -n $teeny ]] || fail "could not read the Ruby version from $tree/version.h"
ruby_version=$major.$minor.$teeny
from=${from:-$major.$minor.0}

# --- Configure arguments -------------------------------------------------

configure_text=""
case $configure_mode in
    ruby)
        configure_text=$("$configure_source" -e 'print RbConfig::CONFIG["configure_args"]')
        ;;
    debian)
        [[ -f $tree/debian/rules ]] || fail "$tree/debian/rules not found; --configure-from-debian needs a Debian source package"
        # debian/rules creates a HOME with mktemp, so keep its temp files
        # in a folder that is removed afterwards.
        rules_tmp=$(mktemp -d)
        configure_text=$(cd "$tree" && TMPDIR=$rules_tmp make -s -f debian/rules \
            --eval 'rbprof-print-configure-options: ; $(info $(configure_options))' \
            rbprof-print-configure-options)
        rm -rf "$rules_tmp"
        ;;
    args)
        configure_text=$configure_source
        ;;
esac

# Split the text into words as a shell would. It comes from the target's
# RbConfig, the fetched debian/rules or the command line, all of which
# this script trusts as much as the configure script it runs.
eval "requested_args=($configure_text)"
eval "extra_args=($configure_extra)"

# Tool variables that name a cross toolchain this machine lacks (Debian
# passes CC=x86_64-linux-gnu-gcc and the like) are dropped. Compilers and
# tools do not change struct layouts, unlike the options and flags kept.
configure_args=()
dropped_args=()
for arg in "${requested_args[@]}"; do
    if [[ $arg =~ ^(CC|CXX|CPP|AS|LD|AR|NM|RANLIB|OBJCOPY|OBJDUMP|STRIP|PKG_CONFIG)=(.*)$ ]]; then
        tool=${BASH_REMATCH[2]%% *}
        if [[ -n $tool ]] && ! command -v "$tool" >/dev/null; then
            dropped_args+=("$arg")
            continue
        fi
    fi
    configure_args+=("$arg")
done
configure_args+=("${extra_args[@]}")
if [[ ${#dropped_args[@]} -gt 0 ]]; then
    echo "dropped configure arguments naming missing tools: ${dropped_args[*]}" >&2
fi

# --- Configure and generate headers ---------------------------------------

log=$build/rbprof-build.log
: >"$log"
args_record=$build/rbprof-configure-args

# A git checkout has no configure script. From 3.0 the tree's autogen.sh
# generates it with ${AUTORECONF:-autoreconf}. Older releases have no
# autogen.sh: run ${AUTOCONF:-autoconf} as their README.md instructs,
# and copy config.guess and config.sub into the aux folder, since their
# repository does not contain them and autoconf 2.69 installs neither.
if [[ ! -x $tree/configure ]]; then
    echo "generating configure in $tree" >&2
    if [[ -x $tree/autogen.sh ]]; then
        (cd "$tree" && ./autogen.sh) >>"$log" 2>&1 ||
            fail "$tree/autogen.sh failed; see $log"
    else
        autoconf_command=${AUTOCONF:-autoconf}
        command -v "$autoconf_command" >/dev/null ||
            fail "$tree has no configure script, and $autoconf_command is missing; install autoconf (autoconf2.69 for releases before 2.7)"
        (cd "$tree" && "$autoconf_command") >>"$log" 2>&1 ||
            fail "$autoconf_command failed; see $log"
        aux_dir=$(sed -n 's/^AC_CONFIG_AUX_DIR(\[\{0,1\}\([^])]*\)\]\{0,1\})$/\1/p' "$tree/configure.ac" | head -n 1)
        for script in config.guess config.sub; do
            [[ -e $tree/${aux_dir:-.}/$script ]] && continue
            [[ -f /usr/share/misc/$script ]] ||
                fail "$tree/${aux_dir:-.}/$script is missing, and so is /usr/share/misc/$script; install autotools-dev"
            cp /usr/share/misc/$script "$tree/${aux_dir:-.}/$script"
        done
    fi
    [[ -x $tree/configure ]] || fail "no configure script in $tree after generating it; see $log"
    rm -f "$args_record"
fi

# Debian's patches edit configure.ac after the tarball's configure was
# generated, and Debian's build regenerates it with `autoreconf -f -i`
# (dh_autoreconf). Do the same, or make would try to run autoconf later.
# tool/m4 is missing before 2.7, and find then exits with an error.
stale_inputs=$(find "$tree/configure.ac" "$tree/aclocal.m4" "$tree/tool/m4" -newer "$tree/configure" -print -quit 2>/dev/null || true)
if [[ -n $stale_inputs ]]; then
    command -v autoreconf >/dev/null ||
        fail "$stale_inputs is newer than configure, and autoreconf is missing; install autoconf"
    echo "regenerating configure: $stale_inputs is newer" >&2
    (cd "$tree" && autoreconf --force --install) >>"$log" 2>&1 ||
        fail "autoreconf failed; see $log"
    rm -f "$args_record"
fi
printf -v args_text '%q\n' "${configure_args[@]}"
if [[ -f $build/config.status && -f $args_record && $(<"$args_record") == "${args_text%$'\n'}" ]]; then
    echo "reusing $build, configured with the same arguments" >&2
else
    echo "configuring $tree in $build (log: $log)" >&2
    rm -f "$args_record"
    if ! (cd "$build" && "$tree/configure" "${configure_args[@]}") >>"$log" 2>&1; then
        tail -n 30 "$log" >&2
        fail "configure failed; see $log"
    fi
    printf '%s' "${args_text%$'\n'}" >"$args_record"
fi

echo "running make incs" >&2
if ! make -C "$build" -j"$(nproc)" incs >>"$log" 2>&1; then
    tail -n 30 "$log" >&2
    fail "make incs failed; see $log"
fi

config_headers=("$build"/.ext/include/*/ruby/config.h)
[[ ${#config_headers[@]} -eq 1 && -f ${config_headers[0]} ]] ||
    fail "expected one $build/.ext/include/ARCH/ruby/config.h, found: ${config_headers[*]}"
config_header=${config_headers[0]}
arch_include=${config_header%/ruby/config.h}

# The installed ruby's config.h records the configure results that the
# target was built with, so a difference means this build's layout may
# differ too.
if [[ $configure_mode == ruby ]]; then
    target_header=$("$configure_source" -e 'print RbConfig::CONFIG["rubyarchhdrdir"]')/ruby/config.h
    if [[ -f $target_header ]]; then
        if ! diff -u "$target_header" "$config_header" >&2; then
            fail "the generated config.h differs from the target's $target_header (diff above); fix the configure arguments"
        fi
        echo "generated config.h matches $target_header" >&2
    else
        echo "note: $target_header not found, so config.h was not compared; install the target's -dev package to compare it" >&2
    fi
fi

# --- Definitions that live only in .c files -------------------------------

# No header declares these, so the probe cannot include them. They are
# copied verbatim from the .c file, with these patterns:
#   symbol.c: the line defining ID_ENTRY_UNIT (`static const int` or
#             `#define`) and the `enum id_entry_type { ... };` block,
#             which give the layout of the symbol table's ids array.
#             Where symbol.c defines the table's struct itself, also
#             that definition: the `static struct symbols { ... }
#             global_symbols` block of 2.5 and 2.6, copied as
#             `struct symbols { ... };` without the variable, or the
#             `typedef struct { ... } rb_symbols_t;` block of 4.0.
#   st.c:     the `typedef ... st_hash_t;` line and the
#             `struct st_table_entry { ... };` block.
from_c_files=$build/rbprof-from-c-files.h
{
    echo "/* Copied by tools/layoutgen/generate.sh from symbol.c and st.c. */"
    awk '
        /^(static const int|#define)[ \t]+ID_ENTRY_UNIT[ \t=]/ { print; next }
        /^enum id_entry_type[ \t]*\{/ { inside = 1 }
        inside { print }
        inside && /^\};/ { inside = 0 }
        /^static struct symbols[ \t]*\{/ { print "struct symbols {"; in_symbols = 1; next }
        in_symbols && /^\}/ { print "};"; in_symbols = 0; next }
        in_symbols { print; next }
        # Any typedef of an unnamed struct is buffered until its closing
        # line shows the name.
        /^typedef struct[ \t]*\{/ { typedef_text = ""; in_typedef = 1 }
        in_typedef { typedef_text = typedef_text $0 "\n" }
        in_typedef && /^\}/ {
            if ($0 ~ /^\}[ \t]*rb_symbols_t;/) printf "%s", typedef_text
            in_typedef = 0
        }
    ' "$tree/symbol.c"
    awk '
        /^typedef [A-Za-z_ ]+[ \t]st_hash_t;/ { print; next }
        /^struct st_table_entry[ \t]*\{/ { inside = 1 }
        inside { print }
        inside && /^\};/ { inside = 0 }
    ' "$tree/st.c"
} >"$from_c_files"
for name in ID_ENTRY_UNIT ID_ENTRY_STR ID_ENTRY_SIZE st_hash_t 'struct st_table_entry'; do
    grep -q "$name" "$from_c_files" ||
        fail "could not find $name in symbol.c or st.c; update the patterns in $0"
done

# --- Compile flags -------------------------------------------------------

cc_command=$(sed -n 's/^CC = //p' "$build/Makefile")
read -r -a cc <<<"${cc_command:-cc}"
cflags=(
    -std=gnu11 -O0
    -I"$script_dir" -I"$build" -I"$arch_include" -I"$tree/include" -I"$tree"
    # Ruby compiles its core with RUBY_EXPORT, so the probe reads the
    # headers the way the interpreter's own files do.
    -DRUBY_EXPORT
)

# --- Optional members ---------------------------------------------------

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A failure of the headers themselves would make every member look
# absent, so check that they compile alone.
printf '#include "probe-headers.h"\n' >"$work/headers.c"
if ! "${cc[@]}" "${cflags[@]}" -fsyntax-only "$work/headers.c" 2>"$work/headers.err"; then
    cat "$work/headers.err" >&2
    fail "Ruby's headers do not compile with the probe's flags (errors above)"
fi

defines=()
while IFS=$'\t' read -r macro expression; do
    printf '#include "probe-headers.h"\nunsigned long long rbprof_value = (unsigned long long)(%s);\n' \
        "$expression" >"$work/member.c"
    if "${cc[@]}" "${cflags[@]}" -fsyntax-only "$work/member.c" 2>"$work/member.err"; then
        defines+=("-D$macro")
        echo "present: $expression" >&2
    else
        echo "absent:  $expression" >&2
    fi
done < <(sed -n 's|^#ifdef \(RBPROF_HAS_[A-Z0-9_]*\) /\* compiles: \(.*\) \*/$|\1\t\2|p' "$script_dir/probe.c")

# --- Compile and run the probe -------------------------------------------

probe=$build/rbprof-probe
if ! "${cc[@]}" "${cflags[@]}" "${defines[@]}" -o "$probe" "$script_dir/probe.c" 2>"$work/probe.err"; then
    cat "$work/probe.err" >&2
    fail "the probe does not compile; a mandatory member may be missing in Ruby $ruby_version (errors above)"
fi

package_description="Ruby $ruby_version source"
if [[ -f $tree/debian/changelog ]]; then
    package=$(dpkg-parsechangelog -l "$tree/debian/changelog" -S Source)
    package_version=$(dpkg-parsechangelog -l "$tree/debian/changelog" -S Version)
    package_description="Debian source package $package $package_version (Ruby $ruby_version)"
elif commit=$(git -C "$tree" rev-parse --verify --quiet 'HEAD^{commit}' 2>/dev/null); then
    # A checkout of Ruby's git repository: name the release tag where HEAD
    # has one, and always the commit. Forks tag some release commits
    # again, so a tag like v2_5_9 or v4.0.5 is preferred.
    tags=$(git -C "$tree" tag --points-at "$commit" 2>/dev/null || true)
    tag=$(grep -E '^v[0-9]+[._][0-9]+[._][0-9]+$' <<<"$tags" | head -n 1 || true)
    if [[ -z $tag ]]; then
        tag=$(head -n 1 <<<"$tags")
    fi
    if [[ -n $tag ]]; then
        package_description="Ruby $ruby_version from git tag $tag (commit ${commit:0:12})"
    else
        package_description="Ruby $ruby_version from git commit ${commit:0:12}"
    fi
fi
# Quotes a word for the source text: NAME='value' or 'word' when it
# contains characters a shell would split or expand, else as it is.
quote_word() {
    if [[ $1 =~ ^[A-Za-z0-9_./=,:+@%-]*$ ]]; then
        printf '%s' "$1"
    elif [[ $1 =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
        printf "%s='%s'" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    else
        printf "'%s'" "$1"
    fi
}

# The source text lists the configure options and CPPFLAGS, which can
# change layouts, and names the other variables without their values.
case $configure_mode in
    ruby) variables_origin="the target's RbConfig" ;;
    debian) variables_origin="debian/rules" ;;
    args) variables_origin="the command line" ;;
esac
option_words=()
variable_names=()
for arg in "${configure_args[@]:0:${#configure_args[@]}-${#extra_args[@]}}"; do
    if [[ $arg == --* || $arg == CPPFLAGS=* ]]; then
        option_words+=("$(quote_word "$arg")")
    elif [[ $arg =~ ^([A-Za-z_][A-Za-z0-9_]*)= ]]; then
        variable_names+=("${BASH_REMATCH[1]}")
    fi
done
source_text="$package_description, configured with ${option_words[*]}"
if [[ ${#variable_names[@]} -gt 0 ]]; then
    source_text+=" and the values from $variables_origin of ${variable_names[*]}"
fi
if [[ ${#extra_args[@]} -gt 0 ]]; then
    extra_words=()
    for arg in "${extra_args[@]}"; do
        extra_words+=("$(quote_word "$arg")")
    done
    source_text+=", plus ${extra_words[*]}"
fi
if [[ ${#dropped_args[@]} -gt 0 ]]; then
    source_text+="; dropped ${dropped_args[*]}, which name tools this machine lacks"
fi

if [[ -z $shared_because ]]; then
    shared_because="Ruby's patch releases fix bugs and by convention leave the internal structs of a series unchanged; the probe ran only on $ruby_version, and the other releases from $from through $through are assumed to match."
fi

entry=$("$probe" "$from" "$through" "$verified" "$source_text" "$shared_because" | jq .)

if [[ -z $table ]]; then
    echo "$entry"
    exit 0
fi

# --- Merge into the table ------------------------------------------------

if [[ ! -f $table ]]; then
    jq -n --arg generator "$generator_line" '{generator: $generator, layouts: []}' >"$table"
fi
jq --argjson entry "$entry" --arg generator "$generator_line" '
    .generator = $generator
    | .layouts = ([.layouts[] | select(.from != $entry.from)] + [$entry]
        | sort_by(.from | split(".") | map(tonumber)))
' "$table" >"$work/table.json"
mv "$work/table.json" "$table"
echo "merged Ruby $from-$through into $table" >&2
