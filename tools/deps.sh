#!/bin/sh
# Install what building and testing umm needs, from Debian's packages, when
# it is missing.  Run by make before the first build; quiet when all is there.
set -e
missing=""
need() { # need <package> <test command...>
	pkg=$1; shift
	"$@" >/dev/null 2>&1 || missing="$missing $pkg"
}
need gcc            command -v gcc
need make           command -v make
need pkg-config     command -v pkg-config
need liburcu-dev    pkg-config --exists liburcu-bp
need libxxhash-dev  pkg-config --exists libxxhash
need perl           command -v prove
need coreutils      command -v timeout
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "umm: missing Debian packages:$missing (run as root, or install them)" >&2
	exit 1
fi
echo "umm: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq $missing >/dev/null
