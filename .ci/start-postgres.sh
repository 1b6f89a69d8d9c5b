# shellcheck shell=bash
# Starts a throw-away PostgreSQL server on loopback for the attestation service's tests and
# exports COVENANT_TEST_POSTGRES_URL. Sourced by .ci/run before `cargo test --workspace`;
# developers can source it too (`source .ci/start-postgres.sh`).
#
# - Installs Debian's `postgresql` package if no server binaries are present (needs root or
#   sudo, as CI has).
# - Runs its own cluster in $COVENANT_PG_DIR (default /tmp/covenant-ci-postgres) on port
#   $COVENANT_PG_PORT (default 54329), listening on 127.0.0.1 only, as the `postgres` user when
#   started by root. It never touches the distribution's default cluster.
# - Idempotent: a second run reuses the running server.
# - Creates the role `covenant` (LOGIN CREATEDB; the tests create one database per test) and
#   the database `covenant_test`.
#
# Sourced, so it does not `set -e` or `exit` (that would change or end the caller's shell); it
# returns non-zero on failure. It is written to work under the caller's `set -euo pipefail`.

covenant_start_postgres() {
    local dir="${COVENANT_PG_DIR:-/tmp/covenant-ci-postgres}"
    local port="${COVENANT_PG_PORT:-54329}"
    local password="covenant-test"
    local bindir=""
    local as=()

    find_bindir() {
        local candidate
        bindir=""
        for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
            if [ -x "$candidate/initdb" ] && [ -x "$candidate/pg_ctl" ]; then bindir="$candidate"; fi
        done
        return 0
    }

    find_bindir
    if [ -z "$bindir" ]; then
        echo "start-postgres: installing PostgreSQL from Debian's packages" >&2
        local sudo=()
        if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq >/dev/null &&
            DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq postgresql >/dev/null ||
            { echo "start-postgres: could not install postgresql" >&2; return 1; }
        find_bindir
        [ -n "$bindir" ] || { echo "start-postgres: no PostgreSQL server binaries after install" >&2; return 1; }
    fi

    # initdb and postgres refuse to run as root: run them as the `postgres` user.
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres ||
            { echo "start-postgres: no postgres user" >&2; return 1; }
        as=(runuser -u postgres --)
    fi

    local data="$dir/data" socket="$dir/socket" log="$dir/server.log"
    if [ ! -s "$data/PG_VERSION" ]; then
        mkdir -p "$dir" && rm -rf "$data" "$socket" && mkdir -p "$socket" || return 1
        if [ "${#as[@]}" -gt 0 ]; then chown -R postgres:postgres "$dir"; fi
        chmod 700 "$dir" "$socket"
        "${as[@]}" "$bindir/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
            --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
            { echo "start-postgres: initdb failed:" >&2; cat "$dir/initdb.log" >&2; return 1; }
    fi

    if ! "${as[@]}" "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        "${as[@]}" "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 \
            -o "-p $port -k $socket -c listen_addresses=127.0.0.1 -c max_connections=200" start \
            >/dev/null ||
            { echo "start-postgres: the server did not start:" >&2; tail -20 "$log" >&2; return 1; }
    fi

    local psql=("${as[@]}" "$bindir/psql" -h "$socket" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)
    if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'covenant'")" != "1" ]; then
        "${psql[@]}" -c "CREATE ROLE covenant LOGIN CREATEDB PASSWORD '$password'" >/dev/null || return 1
    fi
    if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'covenant_test'")" != "1" ]; then
        "${psql[@]}" -c "CREATE DATABASE covenant_test OWNER covenant" >/dev/null || return 1
    fi

    export COVENANT_TEST_POSTGRES_URL="postgres://covenant:$password@127.0.0.1:$port/covenant_test"
    echo "start-postgres: PostgreSQL $("${psql[@]}" -c 'SHOW server_version') on 127.0.0.1:$port" >&2
}

covenant_start_postgres
