#!/usr/bin/env bash
# Create one login role and one database of the same name for each name in
# RAKUTEN_DATABASES (default "mlflow app airflow"), each owned by its role, so that MLflow,
# the API and Airflow never share credentials. The password of NAME comes from the
# environment variable <NAME>_DB_PASSWORD (MLFLOW_DB_PASSWORD, APP_DB_PASSWORD, ...).
#
# The postgres image runs this once, from /docker-entrypoint-initdb.d, when the data
# directory is empty. It can also be run by hand against a live server (psql must reach it
# through the usual PG* variables); existing roles and databases are left as they are.
set -euo pipefail

: "${POSTGRES_USER:=postgres}"

for name in ${RAKUTEN_DATABASES:-mlflow app airflow}; do
  if [[ ! "$name" =~ ^[a-z_][a-z0-9_]*$ ]]; then
    echo "init-databases: '$name' is not a plain lower-case identifier" >&2
    exit 1
  fi
  var="$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
  password="${!var:-}"
  if [[ -z "$password" ]]; then
    echo "init-databases: $var is not set; refusing to create role '$name' without a password" >&2
    exit 1
  fi
  # psql variables (:'name', :'password') and format()'s %I / %L quote the identifier and
  # the literal safely, whatever characters the password holds.
  psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
       -v name="$name" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'name') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'name') \gexec
SQL
  echo "init-databases: database '$name' ready (owner '$name')"
done

# Per-service roles on those databases, from RAKUTEN_DATABASE_ROLES: `database:role:access`
# entries, access `rw` (read/write rows, no DDL: the API) or `ro` (read only: Airflow's
# monitoring, the UI). The password of ROLE comes from <ROLE>_DB_PASSWORD. Tables are created
# by the database's owner (migrations); default privileges give each role its access to the
# tables and sequences the owner creates later, grants to existing ones cover the rest.
for entry in ${RAKUTEN_DATABASE_ROLES:-}; do
  IFS=: read -r db role access <<<"$entry"
  if [[ ! "$db" =~ ^[a-z_][a-z0-9_]*$ || ! "$role" =~ ^[a-z_][a-z0-9_]*$ || ! "$access" =~ ^(rw|ro)$ ]]; then
    echo "init-databases: '$entry' is not database:role:rw|ro with plain lower-case names" >&2
    exit 1
  fi
  var="$(printf '%s' "$role" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
  password="${!var:-}"
  if [[ -z "$password" ]]; then
    echo "init-databases: $var is not set; refusing to create role '$role' without a password" >&2
    exit 1
  fi
  if [[ "$access" == rw ]]; then
    rows="SELECT, INSERT, UPDATE, DELETE"
    sequences="USAGE, SELECT"
  else
    rows="SELECT"
    sequences="SELECT"
  fi
  psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
       -v role="$role" -v password="$password" -v db="$db" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', :'db', :'role') \gexec
SQL
  psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$db" \
       -v role="$role" -v db="$db" -v rows="$rows" -v sequences="$sequences" <<'SQL'
SELECT format('GRANT USAGE ON SCHEMA public TO %I', :'role') \gexec
SELECT format('GRANT %s ON ALL TABLES IN SCHEMA public TO %I', :'rows', :'role') \gexec
SELECT format('GRANT %s ON ALL SEQUENCES IN SCHEMA public TO %I', :'sequences', :'role') \gexec
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT %s ON TABLES TO %I',
              :'db', :'rows', :'role') \gexec
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT %s ON SEQUENCES TO %I',
              :'db', :'sequences', :'role') \gexec
SQL
  echo "init-databases: role '$role' has $access access to database '$db'"
done
