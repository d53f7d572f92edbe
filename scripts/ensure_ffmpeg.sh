#!/usr/bin/env bash
# ffmpeg (Debian's package) reads videos for the model: their key frames and sound.
# Installed here when missing and this user may (root with apt-get); otherwise a note:
# without it videos are answered with "I can't watch videos here".
set -euo pipefail
command -v ffmpeg >/dev/null && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing ffmpeg (Debian package) to read videos…"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null; }
  exit 0
fi
echo "Note: ffmpeg is not installed, so videos get a polite refusal instead of an answer."
echo "      Install it with: sudo apt-get install ffmpeg"
