#!/usr/bin/env bash
# Update the translation catalogues from the code and compile them (needs GNU gettext:
# apt-get install gettext). Run it after changing a user-facing string, translate the new
# entries in locale/zh_Hans/LC_MESSAGES/*.po, and run it again; commit the .po and .mo
# files. The English catalogues get the source text (msgen). tests/core/test_i18n.py runs
# this in a copy of the project and fails when it would change the committed catalogues.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
export DEBUG="${DEBUG:-true}"  # makemessages needs no production secrets
python="${PYTHON:-uv run --no-sync python}"
options=(-l zh_Hans -l en --no-obsolete --add-location=file)
options+=(-i .venv -i tests -i bench -i docker -i staticfiles -i media -i test-artifacts)
$python manage.py makemessages -d django "${options[@]}" >/dev/null
$python manage.py makemessages -d djangojs "${options[@]}" >/dev/null
for po in locale/en/LC_MESSAGES/*.po; do
  # msgmerge's fuzzy guesses mean nothing in English: empty them, then msgen fills them in.
  msgattrib --clear-fuzzy --empty --clear-previous -o "$po" "$po"
  msgen -o "$po" "$po"
done
$python manage.py compilemessages --ignore .venv >/dev/null
