#!/bin/sh
# Prints "VERSION COMMIT" for the build: VERSION is a Debian version
# derived from git (tag v1.2.3 → 1.2.3; 4 commits after it → 1.2.3+4.gCOMMIT;
# no tag → 0.0.0~gitYYYYMMDD.COMMIT, dated by the commit; "+dirty" when the
# tree has uncommitted changes). Outside a git checkout: 0.0.0~unknown unknown.
set -u
git() { command git -c safe.directory='*' "$@"; }  # a checkout owned by another user (CI as root)
commit=$(git rev-parse --short=12 HEAD 2>/dev/null) || { echo "0.0.0~unknown unknown"; exit 0; }
if d=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
	# v1.2.3 or v1.2.3-4-gabcdef
	v=$(echo "${d#v}" | sed -E 's/-([0-9]+)-g([0-9a-f]+)$/+\1.g\2/')
else
	v="0.0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d).$commit"
fi
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	v="$v+dirty"
	commit="$commit-dirty"
fi
echo "$v $commit"
