#!/bin/sh
# Installs the Debian packages that the browser tests use (Chromium and fonts for CJK,
# Thai, Myanmar and Devanagari screenshots). Does nothing where they are present, and
# only warns where apt-get is unavailable: those tests then skip with the reason.
set -u
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -d /usr/share/fonts/opentype/noto ] || missing="$missing fonts-noto-cjk fonts-noto-core"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing:$missing"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing) \
        >/tmp/kigen-system-deps.log 2>&1 \
        || echo "warning: could not install$missing (see /tmp/kigen-system-deps.log)"
else
    echo "warning:$missing not installed and apt-get is not usable here; browser tests will skip"
fi
exit 0
