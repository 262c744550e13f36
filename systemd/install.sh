#!/bin/sh
# Install the openpose-plus daemon: system user, unit, example config.
# Usage: systemd/install.sh [--root DIR] [--bin PATH] [--no-user] [--no-reload]
#   --root DIR   install under DIR (packaging, tests); implies --no-reload
#   --bin PATH   the openpose-plus executable for ExecStart (default: found on PATH)
#   --no-user    do not create the openpose-plus user
# An existing /etc/openpose-plus/edge.toml is never overwritten.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=""
bin=""
make_user=1
reload=1
while [ $# -gt 0 ]; do
    case "$1" in
        --root) root="$2"; reload=0; shift 2 ;;
        --bin) bin="$2"; shift 2 ;;
        --no-user) make_user=0; shift ;;
        --no-reload) reload=0; shift ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

if [ -z "$bin" ]; then
    bin=$(command -v openpose-plus || true)
    [ -n "$bin" ] || { echo "install.sh: openpose-plus is not on PATH; pip install it or pass --bin" >&2; exit 1; }
fi
case "$bin" in
    /*) ;;
    *) echo "install.sh: --bin must be an absolute path, got $bin" >&2; exit 2 ;;
esac
[ -x "$root$bin" ] || [ -x "$bin" ] || { echo "install.sh: $bin is not executable" >&2; exit 1; }

if [ "$make_user" = 1 ]; then
    if ! getent passwd openpose-plus >/dev/null 2>&1; then
        useradd --system --user-group --no-create-home --home-dir /var/lib/openpose-plus \
                --shell /usr/sbin/nologin --comment "openpose-plus daemon" openpose-plus
    fi
    for g in video render; do
        if getent group "$g" >/dev/null 2>&1; then usermod -a -G "$g" openpose-plus; fi
    done
fi

unit_dir="$root/etc/systemd/system"
conf_dir="$root/etc/openpose-plus"
mkdir -p "$unit_dir" "$conf_dir"
sed "s#^ExecStart=[^ ]*openpose-plus #ExecStart=$bin #" "$here/openpose-plus.service" > "$unit_dir/openpose-plus.service.tmp"
mv "$unit_dir/openpose-plus.service.tmp" "$unit_dir/openpose-plus.service"
chmod 0644 "$unit_dir/openpose-plus.service"
if [ -e "$conf_dir/edge.toml" ]; then
    echo "install.sh: keeping the existing $conf_dir/edge.toml (example: $here/edge.toml)"
else
    install -m 0644 "$here/edge.toml" "$conf_dir/edge.toml"
fi
# The unit's Documentation= points here.
doc_dir="$root/usr/local/share/doc/openpose-plus"
mkdir -p "$doc_dir"
for f in "$here/../README.md" "$here/../docs/architecture.md"; do
    if [ -f "$f" ]; then install -m 0644 "$f" "$doc_dir/"; fi
done
echo "installed $unit_dir/openpose-plus.service (ExecStart=$bin) and $conf_dir/edge.toml"

if [ "$reload" = 1 ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    echo "now: edit $conf_dir/edge.toml, then systemctl enable --now openpose-plus"
fi
