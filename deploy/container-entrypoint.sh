#!/bin/sh
# One image, every role. The first argument picks it:
#
#   web                 gunicorn over WSGI (pages, ops API, thin-client API), port 8001
#   ws                  daphne over ASGI (the live dashboard's /ws/), port 8002
#   worker              Celery worker of the default queue ("celery")
#   worker <region>     Celery worker of the queue region.<region> (CELERY_REGION_QUEUES=true)
#   beat                Celery beat: exactly one in the whole deployment
#   migrate             apply the database migrations, then exit
#   manage <command>    any manage.py command (createsuperuser, breakglass_admin, ...)
#
# Anything else runs as given (a shell, for instance).
set -eu

cd "$(dirname "$0")/.."

role="${1:-web}"
[ "$#" -gt 0 ] && shift

concurrency="${DESKOPS_WORKER_CONCURRENCY:-4}"

case "$role" in
    web)
        # The workers' connect counters, summed at each /metrics scrape; only the
        # web role counts them, so only it gets the folder.
        export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/deskops-web-metrics}"
        exec gunicorn --config deploy/gunicorn.conf.py "$@" portal.wsgi:application
        ;;
    ws)
        exec daphne --bind "${DESKOPS_WS_BIND:-0.0.0.0}" --port "${DESKOPS_WS_PORT:-8002}" \
            --ping-interval 20 --ping-timeout 30 "$@" portal.asgi:application
        ;;
    worker)
        if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
            region="$1"
            shift
            queue="region.$region"
            name="region-$region"
        else
            queue="celery"
            name="general"
        fi
        exec celery --app portal worker --queues "$queue" --hostname "$name@%h" \
            --concurrency "$concurrency" --loglevel INFO --without-gossip --without-mingle \
            --max-tasks-per-child 1000 "$@"
        ;;
    beat)
        exec celery --app portal beat --loglevel INFO --pidfile= "$@"
        ;;
    migrate)
        exec python manage.py migrate --noinput "$@"
        ;;
    manage)
        exec python manage.py "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
