#!/bin/sh
# The image's entrypoint: for every IMAGELEDGER_<NAME>_FILE in the environment, export
# IMAGELEDGER_<NAME> with that file's content (a Docker or compose secret, such as
# /run/secrets/database_url), then run the command. Without such variables it only runs it.
set -eu
for variable in $(env | sed -n 's/^\(IMAGELEDGER_[A-Z0-9_]*\)_FILE=.*/\1/p'); do
    eval "file=\${${variable}_FILE}"
    if eval "[ -n \"\${${variable}+set}\" ]"; then
        echo "imageledger-entrypoint: both ${variable} and ${variable}_FILE are set" >&2
        exit 2
    fi
    if [ ! -r "$file" ]; then
        echo "imageledger-entrypoint: ${variable}_FILE: cannot read $file" >&2
        exit 2
    fi
    value=$(cat "$file")
    export "${variable}=${value}"
    unset "${variable}_FILE"
done
exec "$@"
