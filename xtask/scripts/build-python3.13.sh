#!/usr/bin/env bash
# Build CPython 3.13 from Debian trixie's source package and install it into a prefix.
#
# The Python conformance suite (vgi-rpc on PyPI) needs Python >= 3.13, while
# Debian 12 ships 3.11.  Rather than downloading a prebuilt interpreter, this
# fetches the upstream tarball that Debian trixie packages (through the apt
# mirror this machine already uses) and compiles it with `make altinstall`.
#
#   prefix:  $VGI_PYTHON_PREFIX, else $XDG_DATA_HOME/vgi-python3.13,
#            else $HOME/.local/share/vgi-python3.13
#   output:  the interpreter path, as the last line on stdout
#            (all progress goes to stderr)
#
# Safe to run concurrently: a lock file next to the prefix serialises builds,
# and a caller that waited on the lock reuses the finished interpreter.
set -euo pipefail

prefix=${VGI_PYTHON_PREFIX:-${XDG_DATA_HOME:-$HOME/.local/share}/vgi-python3.13}
python="$prefix/bin/python3.13"

say() { printf 'build-python3.13: %s\n' "$*" >&2; }
usable() { [ -x "$1" ] && "$1" -c 'import sys, ssl, venv, ensurepip; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; }

if usable "$python"; then echo "$python"; exit 0; fi
command -v apt-get >/dev/null || { say "apt-get is required to build Python 3.13; set VGI_PYTHON instead"; exit 1; }

mkdir -p "$(dirname "$prefix")"
exec 8>"$prefix.lock"
flock 8
# Another process may have finished the build while we waited for the lock.
if usable "$python"; then echo "$python"; exit 0; fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# The configured mirror (deb822 first, then one-line format), minus the security archive.
mirror=$( { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
            grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}'; } | grep -v security | head -n1 || true)
[ -n "$mirror" ] || { say "no Debian mirror found in the apt configuration"; exit 1; }

# A private apt state directory, so the system's sources and package lists stay untouched.
mkdir -p "$scratch/sources" "$scratch/lists/partial"
cat >"$scratch/sources/trixie-src.sources" <<EOF
Types: deb-src
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
private_apt=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$scratch/sources"
             -o "Dir::State::Lists=$scratch/lists" -o APT::Sandbox::User=root)

export DEBIAN_FRONTEND=noninteractive
build_deps=(build-essential libssl-dev libffi-dev zlib1g-dev libbz2-dev liblzma-dev libsqlite3-dev xz-utils)
if ! dpkg -s "${build_deps[@]}" >/dev/null 2>&1; then
  say "installing build dependencies"
  apt-get update -qq >&2
  apt-get install -y -qq "${build_deps[@]}" >&2
fi

say "downloading the trixie python3.13 source package"
apt-get "${private_apt[@]}" update -qq >&2
(cd "$scratch" && apt-get "${private_apt[@]}" source --download-only -qq python3.13 >&2)
orig=$(ls "$scratch"/python3.13_*.orig.tar.* | head -n1)
tar -xf "$orig" -C "$scratch"
srcdir=$(find "$scratch" -maxdepth 1 -type d -name 'Python-3.13*' | head -n1)

say "compiling $(basename "$srcdir") into $prefix"
if ! (cd "$srcdir" \
      && ./configure --prefix="$prefix" --without-ensurepip -q >&2 \
      && make -j"$(nproc)" -s >"$scratch/build.log" 2>&1 \
      && make -s altinstall >>"$scratch/build.log" 2>&1); then
  tail -n 50 "$scratch/build.log" >&2
  exit 1
fi
# pip is bootstrapped separately so a failed ensurepip never hides a good interpreter.
"$python" -m ensurepip >&2 || true
usable "$python" || { say "built $python, but it lacks ssl/venv support"; exit 1; }
echo "$python"
