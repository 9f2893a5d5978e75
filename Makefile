# sesrouter: build, test, package for AWS Lambda, and make a release.
#
#   make lambda                          dist/lambda.zip: bootstrap (linux/arm64) + rules.yaml
#   make lambda RULES=my-rules.yaml      the same with another rules file, shipped as rules.yaml
#   make dist                            the release: archives, Lambda zips, SBOM, checksums.txt
#   make dist VERSION=v1.2.0             the same, stamped with another version than git's
#   make version                         the version the targets stamp
#   make build                           dist/sesrouter for this machine
#   make check                           check -strict $(RULES): problems and warnings stop it
#   make test                            go test ./...
#   make docs-images                     docs/images/messages.png, with headless Chromium
#   make clean                           remove dist/
#
# Every build is reproducible: the same source, Go version and VERSION
# give the same bytes, whatever the machine's time, path or Go settings
# (no build id, no paths, the Go settings that change code pinned, fixed
# file times, modes and owners, no extra zip or gzip attributes).

GO    ?= go
RULES ?= rules.yaml
# Where the targets write.
DIST  ?= dist

# The version stamped into the binaries (sesrouter version prints it) and
# named in the release's file names: git describe of this checkout, a tag
# (v1.2.0), a tag and the commits after it (v1.2.0-3-g0123456789ab) or,
# before the first tag, the commit; with -dirty when tracked files
# changed. Outside a git checkout (a source archive): devel. Only the
# command line overrides it, not the environment.
ifneq ($(origin VERSION),command line)
VERSION := $(shell [ "$$(git rev-parse --show-toplevel 2>/dev/null)" = "$(CURDIR)" ] && \
	git describe --tags --always --dirty --abbrev=12 2>/dev/null || echo devel)
endif
ifneq ($(shell printf '%s' '$(VERSION)' | tr -d 'A-Za-z0-9._+-'),)
$(error VERSION=$(VERSION): only letters, digits and . _ + - please)
endif
# The version in file names, as goreleaser writes it: without the v.
FILE_VERSION := $(patsubst v%,%,$(VERSION))

# How every binary is built: no cgo, no build id, stripped, no paths of
# this machine (-trimpath), the version stamped (-X main.version), and
# the Go settings that would change the code pinned to their defaults,
# whatever this machine's environment says (GOFLAGS, GOAMD64, ...).
# -buildvcs=false: the version is stamped, and a source archive has no
# git to ask.
GOBUILD := CGO_ENABLED=0 GOFLAGS=-mod=readonly GOAMD64=v1 GOARM64=v8.0 GOEXPERIMENT= \
	$(GO) build -tags lambda.norpc -trimpath -buildvcs=false \
	-ldflags='-s -w -buildid= -X main.version=$(VERSION)'

# The largest Lambda zip the build accepts, in bytes (9 MiB).
MAX_ZIP_BYTES := 9437184
# The time stamped on the files in the zips and archives (UTC, touch -t
# format).
ARCHIVE_TIME := 200001010000

LAMBDA_DIR := $(DIST)/lambda
# -strict: a warning (a rule that never decides, a value SES never sends)
# is as much a reason not to deploy as an error.
CHECK      := $(GO) run ./cmd/sesrouter check -strict -rules $(RULES)

# The release: an archive per OS_ARCH (the binary, LICENSE, README.md,
# CHANGELOG.md), a Lambda zip per architecture (bootstrap alone: the
# rules come from S3 or a layer), the SBOM, and checksums.txt over them.
PLATFORMS     := darwin_amd64 darwin_arm64 linux_amd64 linux_arm64
LAMBDA_ARCHES := amd64 arm64
RELEASE       := sesrouter_$(FILE_VERSION)
SBOM          := $(RELEASE)_sbom.cdx.json
RELEASE_FILES := $(foreach p,$(PLATFORMS),$(RELEASE)_$(p).tar.gz) \
	$(foreach a,$(LAMBDA_ARCHES),$(RELEASE)_lambda_$(a).zip) $(SBOM)
ARCHIVED      := sesrouter LICENSE README.md CHANGELOG.md
STAGE         := $(DIST)/stage

.PHONY: lambda dist version build check test clean docs-images

# The rules are checked before anything is built: a rules file that does
# not load, or that check warns about, stops the build and leaves no
# dist/lambda.zip to deploy.
lambda:
	rm -rf $(LAMBDA_DIR) $(DIST)/lambda.zip
	$(CHECK)
	mkdir -p $(LAMBDA_DIR)
	GOOS=linux GOARCH=arm64 $(GOBUILD) -o $(LAMBDA_DIR)/bootstrap ./cmd/sesrouter
	cp $(RULES) $(LAMBDA_DIR)/rules.yaml
	chmod 0755 $(LAMBDA_DIR)/bootstrap
	chmod 0644 $(LAMBDA_DIR)/rules.yaml
	TZ=UTC touch -t $(ARCHIVE_TIME) $(LAMBDA_DIR)/bootstrap $(LAMBDA_DIR)/rules.yaml
	TZ=UTC zip -q -9 -X -j $(DIST)/lambda.zip $(LAMBDA_DIR)/bootstrap $(LAMBDA_DIR)/rules.yaml
	@bootstrap=$$(wc -c < $(LAMBDA_DIR)/bootstrap); zip=$$(wc -c < $(DIST)/lambda.zip); \
	echo "$(DIST)/lambda.zip: $$zip bytes (bootstrap $$bootstrap bytes, $(RULES) as rules.yaml); at most $(MAX_ZIP_BYTES)"; \
	if [ "$$zip" -gt $(MAX_ZIP_BYTES) ]; then \
		echo "$(DIST)/lambda.zip is over $(MAX_ZIP_BYTES) bytes: removed" >&2; \
		rm -f $(DIST)/lambda.zip; exit 1; \
	fi

# The release, in $(DIST): tar archives made with GNU tar (no folder in
# them: they unpack into the current one), Lambda zips, the SBOM
# (scripts/sbom.sh) and checksums.txt (sha256sum -c reads it).
dist:
	rm -rf $(STAGE) $(addprefix $(DIST)/,$(RELEASE_FILES) checksums.txt)
	set -e; for p in $(PLATFORMS); do \
		mkdir -p $(STAGE)/$$p; \
		GOOS=$${p%_*} GOARCH=$${p#*_} $(GOBUILD) -o $(STAGE)/$$p/sesrouter ./cmd/sesrouter; \
		cp LICENSE README.md CHANGELOG.md $(STAGE)/$$p/; \
		chmod 0755 $(STAGE)/$$p/sesrouter; \
		chmod 0644 $(STAGE)/$$p/LICENSE $(STAGE)/$$p/README.md $(STAGE)/$$p/CHANGELOG.md; \
		TZ=UTC touch -t $(ARCHIVE_TIME) $(addprefix $(STAGE)/$$p/,$(ARCHIVED)); \
		tar -C $(STAGE)/$$p --format=ustar --owner=0 --group=0 --numeric-owner \
			-cf $(STAGE)/$$p.tar $(ARCHIVED); \
		gzip -9 -n < $(STAGE)/$$p.tar > $(DIST)/$(RELEASE)_$$p.tar.gz; \
	done
	set -e; for a in $(LAMBDA_ARCHES); do \
		mkdir -p $(STAGE)/lambda_$$a; \
		cp $(STAGE)/linux_$$a/sesrouter $(STAGE)/lambda_$$a/bootstrap; \
		chmod 0755 $(STAGE)/lambda_$$a/bootstrap; \
		TZ=UTC touch -t $(ARCHIVE_TIME) $(STAGE)/lambda_$$a/bootstrap; \
		zip=$(DIST)/$(RELEASE)_lambda_$$a.zip; \
		TZ=UTC zip -q -9 -X -j $$zip $(STAGE)/lambda_$$a/bootstrap; \
		size=$$(wc -c < $$zip); \
		echo "$$zip: $$size bytes (bootstrap for linux/$$a); at most $(MAX_ZIP_BYTES)"; \
		if [ "$$size" -gt $(MAX_ZIP_BYTES) ]; then \
			echo "$$zip is over $(MAX_ZIP_BYTES) bytes: removed" >&2; \
			rm -f $$zip; exit 1; \
		fi; \
	done
	GO="$(GO)" sh scripts/sbom.sh $(VERSION) $(foreach p,$(PLATFORMS),$(STAGE)/$(p)/sesrouter) > $(DIST)/$(SBOM)
	cd $(DIST) && sha256sum $(sort $(RELEASE_FILES)) > checksums.txt
	rm -rf $(STAGE)
	@echo "$(DIST)/checksums.txt, sesrouter $(VERSION):"; cat $(DIST)/checksums.txt

version:
	@echo $(VERSION)

build:
	mkdir -p $(DIST)
	$(GOBUILD) -o $(DIST)/sesrouter ./cmd/sesrouter

check:
	$(CHECK)

test:
	$(GO) test ./...

# The picture of the shipped rules' messages in the docs: route -dry-run
# -format html over testdata/demo.ndjson, shot by headless Chromium
# (Debian's chromium package; CHROMIUM=… names another browser).
docs-images:
	GO=$(GO) bash docs/images.sh

clean:
	rm -rf $(DIST)
