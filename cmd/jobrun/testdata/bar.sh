#!/bin/sh
# Draws a \r progress bar, as tools do on a terminal: each redraw starts
# with a carriage return and ends without a newline.
echo "downloading"
i=0
while [ "$i" -le 100 ]; do
	n=$((i / 10))
	bar=$(printf '%*s' "$n" '' | tr ' ' '#')
	printf '\r[%-10s] %3d%%' "$bar" "$i"
	i=$((i + 4))
	sleep 0.02
done
printf '\n'
echo "done"
