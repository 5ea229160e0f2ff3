#!/usr/bin/env bash
# Provide librdkafka >= 2.8 for the build and the runtime.
#
# If the system's librdkafka (pkg-config rdkafka) is already >= 2.8 we use it.
# Otherwise we build Debian trixie's librdkafka source package into a prefix
# outside the clone ($YISHI_PREFIX, default ~/.cache/yishi/librdkafka-<ver>),
# reused by later runs on the same machine. The Debian mirror is taken from
# this machine's own apt configuration; no host name is written here.
#
# Prints nothing but progress on stderr; on success prints the prefix to use
# ("system" when the system library is new enough) on stdout.
set -euo pipefail

WANT_MAJOR=2; WANT_MINOR=8
CACHE_ROOT="${YISHI_CACHE:-$HOME/.cache/yishi}"
PREFIX="${YISHI_RDKAFKA_PREFIX:-$CACHE_ROOT/librdkafka-trixie}"

log() { echo "[setup-librdkafka] $*" >&2; }

version_ok() { # $1 = x.y.z
  local maj min; IFS=. read -r maj min _ <<<"$1"
  (( maj > WANT_MAJOR || (maj == WANT_MAJOR && min >= WANT_MINOR) ))
}

if [[ -z "${YISHI_FORCE_RDKAFKA_BUILD:-}" ]] && command -v pkg-config >/dev/null \
   && sys_ver=$(PKG_CONFIG_PATH= pkg-config --modversion rdkafka 2>/dev/null) && version_ok "$sys_ver" \
   && [[ -n "$(PKG_CONFIG_PATH= pkg-config --variable=includedir rdkafka)" ]] \
   && [[ -f "$(PKG_CONFIG_PATH= pkg-config --variable=includedir rdkafka)/librdkafka/rdkafka_mock.h" ]]; then
  log "system librdkafka $sys_ver is new enough"
  echo system; exit 0
fi

if [[ -f "$PREFIX/.complete" ]]; then
  echo "$PREFIX"; exit 0
fi

SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
need_pkgs=()
for p in build-essential pkg-config dpkg-dev zlib1g-dev libssl-dev libzstd-dev liblz4-dev libsasl2-dev python3; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if ((${#need_pkgs[@]})); then
  log "installing build tools: ${need_pkgs[*]}"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >&2
fi

# The Debian mirror this machine already uses (deb822 or one-line format).
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [[ -f $f ]] || continue
  mirror=$(awk '/^URIs:/{u=$2} /^Suites:/{ if ($0 ~ /(bookworm|trixie|sid|stable)( |$)/ && u !~ /security/) {print u; exit} }' "$f")
  [[ -n $mirror ]] && break
done
if [[ -z $mirror && -f /etc/apt/sources.list ]]; then
  mirror=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
fi
[[ -n $mirror ]] || { log "error: no Debian mirror found in the apt configuration"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/yishi-rdkafka.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/etc"
echo "deb-src [trusted=yes] $mirror trixie main" > "$work/etc/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$work/etc/sources.list" -o "Dir::Etc::sourceparts=-"
          -o "Dir::State::Lists=$work/lists" -o "APT::Get::List-Cleanup=0" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
log "fetching the trixie librdkafka source package index"
apt-get "${apt_opts[@]}" update -qq >&2
cd "$work"
log "downloading the librdkafka source package"
apt-get "${apt_opts[@]}" source --download-only -qq librdkafka >&2
dsc=$(ls "$work"/librdkafka_*.dsc | head -1)
dpkg-source --no-check -x "$dsc" "$work/src" >&2
cd "$work/src"
hex=$(sed -n 's/^#define RD_KAFKA_VERSION *0x\([0-9a-fA-F]\{6\}\).*/\1/p' src/rdkafka.h)
got=$(printf '%d.%d.%d' "0x${hex:0:2}" "0x${hex:2:2}" "0x${hex:4:2}")
version_ok "$got" || { log "error: source package has version $got < $WANT_MAJOR.$WANT_MINOR"; exit 1; }
log "building librdkafka $got into $PREFIX (about a minute on 2 cores)"
./configure --prefix="$PREFIX" --enable-ssl --disable-gssapi --disable-curl --enable-static >"$work/configure.log" 2>&1 \
  || { tail -40 "$work/configure.log" >&2; exit 1; }
make -j"$(nproc)" libs >"$work/make.log" 2>&1 || { tail -40 "$work/make.log" >&2; exit 1; }
# The hub's clients need TLS and SASL PLAIN/SCRAM (docs/operations.md, "Security"): configure
# leaves them out silently when libssl-dev is missing, so check what it built in.
for feature in WITH_SSL WITH_SASL_SCRAM; do
  grep -q "^#define $feature 1" config.h || { log "error: librdkafka was configured without $feature (is libssl-dev installed?)"; exit 1; }
done
make -C examples rdkafka_performance >>"$work/make.log" 2>&1 || { tail -40 "$work/make.log" >&2; exit 1; }
rm -rf "$PREFIX"; mkdir -p "$PREFIX/bin"
make install-subdirs >>"$work/make.log" 2>&1 || make install >>"$work/make.log" 2>&1 || { tail -40 "$work/make.log" >&2; exit 1; }
cp examples/rdkafka_performance "$PREFIX/bin/"
touch "$PREFIX/.complete"
log "done: librdkafka $got in $PREFIX"
echo "$PREFIX"
