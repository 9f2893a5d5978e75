# sesrouter: build, test and package for AWS Lambda.
#
#   make lambda                          dist/lambda.zip: bootstrap (linux/arm64) + rules.yaml
#   make lambda RULES=my-rules.yaml      the same with another rules file, shipped as rules.yaml
#   make build                           dist/sesrouter for this machine
#   make check                           check -strict $(RULES): problems and warnings stop it
#   make test                            go test ./...
#   make docs-images                     docs/images/messages.png, with headless Chromium
#   make clean                           remove dist/
#
# The zip is reproducible: the same source and Go version give the same
# bytes (no build id, no paths, fixed file times and modes, no extra
# zip attributes).

GO    ?= go
RULES ?= rules.yaml

# The largest dist/lambda.zip the build accepts, in bytes (6 MiB).
MAX_ZIP_BYTES := 6291456
# The time stamped on the files in the zip (UTC, touch -t format).
ZIP_TIME := 200001010000

LAMBDA_DIR := dist/lambda
# -strict: a warning (a rule that never decides, a value SES never sends)
# is as much a reason not to deploy as an error.
CHECK      := $(GO) run ./cmd/sesrouter check -strict -rules $(RULES)

.PHONY: lambda build check test clean docs-images

# The rules are checked before anything is built: a rules file that does
# not load, or that check warns about, stops the build and leaves no
# dist/lambda.zip to deploy.
lambda:
	rm -rf $(LAMBDA_DIR) dist/lambda.zip
	$(CHECK)
	mkdir -p $(LAMBDA_DIR)
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath \
		-ldflags='-s -w -buildid=' -o $(LAMBDA_DIR)/bootstrap ./cmd/sesrouter
	cp $(RULES) $(LAMBDA_DIR)/rules.yaml
	chmod 0755 $(LAMBDA_DIR)/bootstrap
	chmod 0644 $(LAMBDA_DIR)/rules.yaml
	TZ=UTC touch -t $(ZIP_TIME) $(LAMBDA_DIR)/bootstrap $(LAMBDA_DIR)/rules.yaml
	TZ=UTC zip -q -9 -X -j dist/lambda.zip $(LAMBDA_DIR)/bootstrap $(LAMBDA_DIR)/rules.yaml
	@bootstrap=$$(wc -c < $(LAMBDA_DIR)/bootstrap); zip=$$(wc -c < dist/lambda.zip); \
	echo "dist/lambda.zip: $$zip bytes (bootstrap $$bootstrap bytes, $(RULES) as rules.yaml); at most $(MAX_ZIP_BYTES)"; \
	if [ "$$zip" -gt $(MAX_ZIP_BYTES) ]; then \
		echo "dist/lambda.zip is over $(MAX_ZIP_BYTES) bytes: removed" >&2; \
		rm -f dist/lambda.zip; exit 1; \
	fi

build:
	mkdir -p dist
	$(GO) build -trimpath -o dist/sesrouter ./cmd/sesrouter

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
	rm -rf dist
