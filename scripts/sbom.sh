#!/bin/sh
# sbom.sh VERSION BINARY... writes to standard output the software bill of
# materials of sesrouter VERSION as CycloneDX 1.6 JSON: the Go standard
# library and every module linked into the BINARYs (each one's build
# information, as go version -m prints it), with the go.sum hash of each
# (its h1: SHA-256, in hex). It holds no time stamp and no serial number,
# so that the same binaries always give the same bytes. make dist runs it.
set -eu

GO=${GO:-go}
if [ "$#" -lt 2 ]; then
	echo "usage: sbom.sh VERSION BINARY..." >&2
	exit 2
fi
version=$1
shift
case $version in
*[!A-Za-z0-9._+-]* | '')
	echo "sbom.sh: version $version: only letters, digits and . _ + - please" >&2
	exit 2
	;;
esac

info=$("$GO" version -m "$@")
# The Go of every binary (the first line of each: "FILE: go1.26.8").
gos=$(printf '%s\n' "$info" | awk '/^[^\t]/ { print $NF }' | LC_ALL=C sort -u)
if [ "$(printf '%s\n' "$gos" | wc -l)" -ne 1 ]; then
	echo "sbom.sh: the binaries were built by different Go versions: $gos" >&2
	exit 1
fi
# The modules: "PATH VERSION H1" a line, each once. A replaced module
# (a "=>" line) is refused: a release is built without replace directives.
deps=$(printf '%s\n' "$info" | awk -F'\t' '
	$2 == "=>" { print "sbom.sh: " $3 " replaces " prev ": a release is built without replace directives" > "/dev/stderr"; bad = 1 }
	$2 == "dep" { prev = $3; print $3, $4, $5 }
	END { exit bad }' | LC_ALL=C sort -u)

main=github.com/sesrouter/sesrouter
purl() { printf 'pkg:golang/%s@%s?type=module' "$1" "$2"; }

printf '{\n'
printf '  "bomFormat": "CycloneDX",\n'
printf '  "specVersion": "1.6",\n'
printf '  "version": 1,\n'
printf '  "metadata": {\n'
printf '    "component": {\n'
printf '      "bom-ref": "%s",\n' "$(purl "$main" "$version")"
printf '      "type": "application",\n'
printf '      "name": "%s",\n' "$main"
printf '      "version": "%s",\n' "$version"
printf '      "purl": "%s"\n' "$(purl "$main" "$version")"
printf '    }\n'
printf '  },\n'
printf '  "components": [\n'
printf '    {\n'
printf '      "bom-ref": "%s",\n' "$(purl std "$gos")"
printf '      "type": "library",\n'
printf '      "name": "std",\n'
printf '      "version": "%s",\n' "$gos"
printf '      "purl": "%s"\n' "$(purl std "$gos")"
printf '    }'
refs="\"$(purl std "$gos")\""
printf '%s\n' "$deps" | {
	while read -r path ver h1; do
		[ -n "$path" ] || continue
		sum=$(printf '%s' "${h1#h1:}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
		printf ',\n    {\n'
		printf '      "bom-ref": "%s",\n' "$(purl "$path" "$ver")"
		printf '      "type": "library",\n'
		printf '      "name": "%s",\n' "$path"
		printf '      "version": "%s",\n' "$ver"
		printf '      "purl": "%s",\n' "$(purl "$path" "$ver")"
		printf '      "hashes": [{"alg": "SHA-256", "content": "%s"}]\n' "$sum"
		printf '    }'
		refs="$refs, \"$(purl "$path" "$ver")\""
	done
	printf '\n  ],\n'
	printf '  "dependencies": [\n'
	printf '    {"ref": "%s", "dependsOn": [%s]}\n' "$(purl "$main" "$version")" "$refs"
	printf '  ]\n'
	printf '}\n'
}
