// Package prompts holds the voice prompts of a verification call ("Your
// sipdesk code is", the digits 0-9) as raw G.711 at 8 kHz, μ-law (.ul) and
// A-law (.al), produced by scripts/prompts.sh (espeak-ng and sox) and
// embedded in the binary. Every file is a whole number of 20 ms frames.
package prompts

import (
	"embed"
	"fmt"
)

//go:embed *.ul *.al
var files embed.FS

// FrameSize is the bytes of one 20 ms G.711 frame at 8 kHz.
const FrameSize = 160

// Law is a G.711 companding law.
type Law string

// The two laws; the file extension of each.
const (
	ULaw Law = "ul" // PCMU, RTP payload type 0
	ALaw Law = "al" // PCMA, RTP payload type 8
)

// Prompt returns one prompt: "intro" or a digit "0".."9".
func Prompt(law Law, name string) ([]byte, error) {
	b, err := files.ReadFile(name + "." + string(law))
	if err != nil {
		return nil, fmt.Errorf("no prompt %q in %s", name, law)
	}
	return b, nil
}

// Code is the audio of a code read out: the intro and the digits, twice.
// It refuses anything but digits.
func Code(law Law, code string) ([]byte, error) {
	if code == "" {
		return nil, fmt.Errorf("empty code")
	}
	var out []byte
	for range 2 {
		for _, name := range append([]string{"intro"}, split(code)...) {
			p, err := Prompt(law, name)
			if err != nil {
				return nil, err
			}
			out = append(out, p...)
		}
	}
	return out, nil
}

// split is a code's digits as prompt names ("x" for a non-digit, which no
// prompt has).
func split(code string) []string {
	out := make([]string, 0, len(code))
	for _, r := range code {
		if r < '0' || r > '9' {
			out = append(out, "x")
			continue
		}
		out = append(out, string(r))
	}
	return out
}
