#!/usr/bin/env bash
# Install (when root and missing) the Debian packages the tests use, then start PostgreSQL
# on 127.0.0.1:5432 with a role and database for the suite. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t packages < <(sed -e 's/#.*//' -e '/^\s*$/d' scripts/debian-packages.txt)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run as root or install them)" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# node and npm for the single sign-on tests (tests/integration/test_oidc_browser.py runs
# oidc-provider after `npm ci`). NodeSource's nodejs package ships npm and conflicts with
# Debian's npm package, so install them only when no npm is on the machine at all.
if ! command -v npm >/dev/null && [ "$(id -u)" -eq 0 ]; then
  echo "installing: nodejs npm"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

# PostgreSQL: the Debian cluster, started if it is not running.
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | grep -q online; then
  cluster=$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')
  if [ -z "$cluster" ]; then
    pg_createcluster "$version" main >/dev/null
    cluster="$version main"
  fi
  pg_ctlcluster $cluster start
fi
for _ in $(seq 1 50); do
  pg_isready -q -h 127.0.0.1 -p 5432 && break
  sleep 0.2
done
pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL did not start" >&2; exit 1; }
runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'certfleet') THEN
    CREATE ROLE certfleet LOGIN CREATEDB PASSWORD 'certfleet';
  END IF;
END $$;
SQL
runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_database WHERE datname = 'certfleet_test'" | grep -q 1 \
  || runuser -u postgres -- createdb -O certfleet certfleet_test
echo "PostgreSQL ready on 127.0.0.1:5432 (database certfleet_test)"
