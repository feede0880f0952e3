#!/usr/bin/env bash
# The Dockerfile's build without a Docker engine: the static glibc binary built as its
# builder stage builds it, checked to be static and to serve, then assembled into a
# `FROM scratch` image with buildah (USER, EXPOSE, ENTRYPOINT as in the Dockerfile) and
# exported as an OCI archive. distroless cannot be pulled here; scratch is what it adds to
# a static binary minus /etc/passwd and CA certificates, which deployguard does not read.
#
# usage: [OCI_ARCHIVE=PATH] .ci/static-image.sh
#   OCI_ARCHIVE: where to keep the OCI archive (the release workflow pushes it from there).
#   Unset: it is written to a temporary directory and removed. The binary stays in
#   target/static/x86_64-unknown-linux-gnu/release/deployguard either way.
set -euo pipefail
# A relative OCI_ARCHIVE is relative to where the script was started, not the repository.
case "${OCI_ARCHIVE:-}" in ""|/*) ;; *) OCI_ARCHIVE="$PWD/$OCI_ARCHIVE" ;; esac
cd "$(dirname "$0")/.."
ROOT="$PWD"
TARGET=x86_64-unknown-linux-gnu
WORK="$(mktemp -d)"
ARCHIVE="${OCI_ARCHIVE:-$WORK/deployguard.tar}"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

start=$SECONDS
CARGO_TARGET_DIR="$ROOT/target/static" RUSTFLAGS='-C target-feature=+crt-static' \
  cargo build --release --locked --quiet --target "$TARGET"
BIN="$ROOT/target/static/$TARGET/release/deployguard"
echo "static-image: built in $((SECONDS - start)) s, $(du -h "$BIN" | cut -f1)"

file "$BIN" | grep -q 'static' || { file "$BIN"; echo "static-image: the binary is not static"; exit 1; }
"$BIN" --version

# It serves: the README's run-it-and-curl flow with the development certificate.
"$BIN" serve --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --dev-cert-dir "$WORK/dev" \
  --log-format json > "$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
  grep -q '"deployguard ready"\|deployguard ready' "$WORK/serve.log" && break
  sleep 0.1
done
addr=$(grep -o '"listen":"[^"]*"' "$WORK/serve.log" | head -n 1 | cut -d'"' -f4)
port="${addr##*:}"
[ -n "$port" ] || { cat "$WORK/serve.log"; echo "static-image: the server did not start"; exit 1; }
answer=$(curl -sf --cacert "$WORK/dev/ca.crt" -H 'Content-Type: application/json' \
  --data @examples/admission-review.json "https://localhost:$port/mutate")
echo "$answer" | grep -q '"patchType":"JSONPatch"' || { echo "$answer"; echo "static-image: no patch"; exit 1; }
kill "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
echo "static-image: the static binary serves /mutate over TLS"

if ! command -v buildah >/dev/null 2>&1; then
  apt-get install -y -qq --no-install-recommends buildah >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends buildah >/dev/null; }
fi
b=(buildah --storage-driver vfs --root "$WORK/storage" --runroot "$WORK/run")
export BUILDAH_ISOLATION=chroot
ctr=$("${b[@]}" from scratch)
"${b[@]}" copy --chmod 0755 "$ctr" "$BIN" /deployguard >/dev/null
"${b[@]}" config --user 65532:65532 --port 8443 --port 9090 \
  --entrypoint '["/deployguard", "serve"]' \
  --label org.opencontainers.image.title=deployguard \
  --label org.opencontainers.image.version="$("$BIN" --version | cut -d' ' -f2)" \
  --label org.opencontainers.image.revision="$(git rev-parse --short HEAD)" "$ctr"
"${b[@]}" commit --quiet "$ctr" deployguard:ci >/dev/null
mkdir -p "$(dirname "$ARCHIVE")" && rm -f "$ARCHIVE"
"${b[@]}" push --quiet deployguard:ci "oci-archive:$ARCHIVE:deployguard:ci"
config=$("${b[@]}" inspect --format '{{.OCIv1.Config.User}} {{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.ExposedPorts}}' deployguard:ci)
[ "$config" = "65532:65532 [/deployguard serve] map[8443:{} 9090:{}]" ] ||
  { echo "static-image: unexpected image config: $config"; exit 1; }
echo "static-image: OCI image $(du -h "$ARCHIVE" | cut -f1) ($config)${OCI_ARCHIVE:+, kept in $ARCHIVE}"
