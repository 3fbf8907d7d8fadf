#!/bin/sh
# Mixed output for the end-to-end test: stdout and stderr, \r, \r\n,
# unicode, invalid UTF-8, a 1 MiB line and no final newline.
printf 'out one\n'
printf 'err one\r\n' >&2
printf 'progress 10%%\rprogress 50%%\rprogress 100%%\n'
printf 'unicode: h\303\251llo w\303\266rld \342\234\223 \346\227\245\346\234\254\350\252\236\n'
printf 'bad utf8: \377\376\303\n'
printf 'err \342\202 partial\n' >&2
head -c 1048576 /dev/zero | tr '\0' 'y'
printf '\n'
printf 'tab\tand\033[1;31mcolour\033[0m\n' >&2
sleep 0.3
printf 'no final newline'
exit 7
