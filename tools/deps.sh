#!/bin/sh
# Install what building and testing umm needs, from Debian's packages, when
# it is missing.  Run by make before the first build; quiet when all is there.
# gnuplot (for umm run --plot) is wanted, not needed: installed as root,
# a warning otherwise.
set -e
missing=""
wanted=""
need() { # need <package> <test command...>
	pkg=$1; shift
	"$@" >/dev/null 2>&1 || missing="$missing $pkg"
}
want() { # want <package> <test command...>
	pkg=$1; shift
	"$@" >/dev/null 2>&1 || wanted="$wanted $pkg"
}
need gcc            command -v gcc
need make           command -v make
need pkg-config     command -v pkg-config
need liburcu-dev    pkg-config --exists liburcu-bp
need libxxhash-dev  pkg-config --exists libxxhash
need perl           command -v prove
need coreutils      command -v timeout
want gnuplot-nox    command -v gnuplot
[ -z "$missing$wanted" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	if [ -n "$missing" ]; then
		echo "umm: missing Debian packages:$missing (run as root, or install them)" >&2
		exit 1
	fi
	echo "umm: without$wanted, umm run --plot cannot draw (run as root, or install it)" >&2
	exit 0
fi
echo "umm: installing$missing$wanted" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq $missing >/dev/null
if [ -n "$wanted" ] && ! apt-get install -y -qq $wanted >/dev/null; then
	echo "umm: could not install$wanted: umm run --plot cannot draw" >&2
fi
