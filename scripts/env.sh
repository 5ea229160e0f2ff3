# Source this file: installs what is missing (librdkafka >= 2.8, Tansu) and
# exports what SwiftPM needs to find and load librdkafka.
#   YISHI_SWIFT_FLAGS  linker flags (rpath) to pass to `swift build/test/run`
_yishi_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_yishi_prefix="$("$_yishi_root/scripts/setup-librdkafka.sh")" || return 1 2>/dev/null || exit 1
if [[ "$_yishi_prefix" == system ]]; then
  export YISHI_SWIFT_FLAGS=""
else
  export PKG_CONFIG_PATH="$_yishi_prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export YISHI_RDKAFKA_BIN="$_yishi_prefix/bin"
  export YISHI_SWIFT_FLAGS="-Xlinker -rpath -Xlinker $_yishi_prefix/lib"
fi
"$_yishi_root/scripts/setup-tansu.sh" >/dev/null || return 1 2>/dev/null || exit 1
unset _yishi_root _yishi_prefix
