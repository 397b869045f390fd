#!/usr/bin/env bash
# End to end on a machine with Docker (Compose v2), curl and python3: build the image, start the compose stack
# (Apache Kafka KRaft, PostgreSQL, mailpit, every worker, the lag exporter, the gateway), push an order, submit
# the buyer's form, wait for the invoice, and find its e-mail with the PDF in mailpit through mailpit's API.
#
#   deploy/smoke.sh            # tears the stack down afterwards (KEEP=1 leaves it running)
#
# Exit 0: every step passed. On a failure it prints the step and the containers' last log lines.
set -euo pipefail
cd "$(dirname "$0")/.."

PROJECT="${PROJECT:-fapiao-smoke}"
COMPOSE=(docker compose -f deploy/docker-compose.yml -p "$PROJECT")
BASE="http://localhost:8080"
MAILPIT="http://localhost:8025"

step() { echo "smoke: $*"; }
fail() {
  echo "smoke: FAILED: $*" >&2
  "${COMPOSE[@]}" ps >&2 || true
  "${COMPOSE[@]}" logs --tail 40 >&2 || true
  exit 1
}
cleanup() { [ "${KEEP:-0}" = 1 ] || "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true; }
trap cleanup EXIT

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what="$2"; shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what (waited)"
    sleep 2
  done
}

docker info >/dev/null 2>&1 || { echo "smoke: no Docker daemon here (docker info failed)" >&2; exit 2; }

step "build the image and start the stack"
"${COMPOSE[@]}" up --build -d || fail "docker compose up"

step "wait for the gateway to be ready (/readyz: database, broker metadata, settings cache)"
wait_for 240 "gateway /readyz" curl -fsS "$BASE/readyz"
wait_for 120 "lag exporter /readyz" curl -fsS "http://localhost:6065/readyz"

step "create the demo merchant (organisation, business system DEMO-POS, 动态二维码设置)"
"${COMPOSE[@]}" exec -T gateway python - <<'PY' || fail "demo merchant"
from fapiao.adapters.db import make_engine, make_session_factory
from fapiao.config import load_settings
from fapiao.services.merchants import ensure_demo_merchant

with make_session_factory(make_engine(load_settings().db_url))() as session:
    print("demo QR key:", ensure_demo_merchant(session).key)
PY

step "push the sample order and wait for its QR link (fapiao demo)"
out="$("${COMPOSE[@]}" exec -T gateway fapiao demo)" || fail "fapiao demo: $out"
link="$(grep -o "$BASE/q/[A-Za-z0-9_=-]*" <<<"$out" | head -1)"
[ -n "$link" ] || fail "no link in: $out"
echo "smoke: link $link"
curl -fsS "$link" >/dev/null || fail "buyer page $link"

step "submit the buyer's form (企业, a valid tax ID, an e-mail address)"
code="$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$link" \
  --data-urlencode buyer_type=enterprise --data-urlencode title=某某科技有限公司 \
  --data-urlencode tax_id=91440300358768292H --data-urlencode email=buyer@example.cn)"
[ "$code" = 303 ] || fail "submission answered $code, not 303"

step "wait for the invoice to be issued"
issued() { curl -fsS "$link/status" | python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["status"] != "issued")'; }
wait_for 120 "invoice issued" issued
number="$(curl -fsS "$link/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["invoice_number"])')"
echo "smoke: invoice $number"

step "find the e-mail with the PDF in mailpit (its API)"
mailed() {
  curl -fsS "$MAILPIT/api/v1/messages" | python3 -c '
import json, sys
number = sys.argv[1]
msgs = [m for m in json.load(sys.stdin).get("messages", [])
        if number in m.get("Subject", "") and any(t.get("Address") == "buyer@example.cn" for t in m.get("To", []))]
sys.exit(0 if msgs and msgs[0].get("Attachments", 0) >= 1 else 1)' "$number"
}
wait_for 120 "invoice e-mail in mailpit" mailed
curl -fsS "$link/invoice.pdf" | head -c 5 | grep -q '%PDF-' || fail "the invoice PDF from the buyer page"

step "consumer lag is exported once, by the lag exporter"
curl -fsS "http://localhost:6065/metrics" | grep -q '^kafka_consumergroup_group_max_lag{' \
  || fail "no lag series on the lag exporter"

step "passed: push → issue → mail in mailpit"
