#!/bin/sh
# Produce the voice prompts of "Call me instead" (a verification code read
# out by a call): the intro and the digits 0-9, spoken by espeak-ng and
# turned by sox into raw G.711 at 8 kHz mono, μ-law (.ul) and A-law (.al).
# Each file is trimmed of silence, gets a short pause after it and is
# padded with G.711 silence to whole 20 ms frames (160 bytes), so the edge
# sends every prompt as whole RTP packets.
#
# Usage: scripts/prompts.sh [DIR]   (default internal/media/prompts)
# Needs Debian's espeak-ng and sox. The files are committed; rerun this
# after changing a text or the voice, and commit the result.
set -eu
dir=${1:-internal/media/prompts}
voice=${PROMPT_VOICE:-en-us}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$dir"

# pad FILE BYTE: append BYTE (octal) until the size is a multiple of 160.
pad() {
	size=$(wc -c <"$1")
	n=$(( (160 - size % 160) % 160 ))
	if [ "$n" -gt 0 ]; then
		head -c "$n" /dev/zero | tr '\000' "\\$2" >>"$1"
	fi
}

# prompt NAME TEXT PAUSE: one prompt in both laws.
prompt() {
	espeak-ng -v "$voice" -s 140 -w "$tmp/$1.wav" "$2"
	# 8 kHz, 16-bit mono, silence trimmed at both ends, a pause after.
	sox -D "$tmp/$1.wav" -r 8000 -c 1 -b 16 "$tmp/$1.8k.wav" \
		silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse pad 0 "$3"
	sox -D "$tmp/$1.8k.wav" -t raw -e u-law -b 8 "$dir/$1.ul"
	sox -D "$tmp/$1.8k.wav" -t raw -e a-law -b 8 "$dir/$1.al"
	pad "$dir/$1.ul" 377 # μ-law silence 0xFF
	pad "$dir/$1.al" 325 # A-law silence 0xD5
}

prompt intro "Your sipdesk code is" 0.4
for d in 0 1 2 3 4 5 6 7 8 9; do
	prompt "$d" "$d" 0.25
done
