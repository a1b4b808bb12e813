package prompts

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The embedded prompts exist for every digit in both laws, are whole
// 20 ms frames and are not silence.
func TestPromptsEmbedded(t *testing.T) {
	for _, law := range []Law{ULaw, ALaw} {
		for _, name := range []string{"intro", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9"} {
			b, err := Prompt(law, name)
			if err != nil {
				t.Fatal(err)
			}
			checkPrompt(t, law, name, b)
		}
	}
	a, err := Code(ULaw, "42")
	if err != nil {
		t.Fatal(err)
	}
	intro, _ := Prompt(ULaw, "intro")
	four, _ := Prompt(ULaw, "4")
	two, _ := Prompt(ULaw, "2")
	once := append(append(append([]byte{}, intro...), four...), two...)
	if !bytes.Equal(a, append(once, once...)) {
		t.Fatalf("Code(42) is not intro,4,2 twice (%d bytes)", len(a))
	}
	if _, err := Code(ULaw, "4a"); err == nil {
		t.Fatal("a non-digit was accepted")
	}
}

func checkPrompt(t *testing.T, law Law, name string, b []byte) {
	t.Helper()
	if len(b) == 0 || len(b)%FrameSize != 0 {
		t.Fatalf("%s.%s: %d bytes, not whole 20 ms frames", name, law, len(b))
	}
	silence := byte(0xFF)
	if law == ALaw {
		silence = 0xD5
	}
	if bytes.Count(b, []byte{silence}) > len(b)*9/10 {
		t.Fatalf("%s.%s is (almost) silence", name, law)
	}
	if secs := float64(len(b)) / 8000; secs > 3 {
		t.Fatalf("%s.%s lasts %.1f s: too long for a prompt", name, law, secs)
	}
}

// scripts/prompts.sh, when espeak-ng and sox are installed, produces the
// the committed files byte for byte (sox runs without dither).
func TestPromptsScript(t *testing.T) {
	for _, tool := range []string{"espeak-ng", "sox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: the script is not run (the committed prompts are checked by TestPromptsEmbedded)", tool)
		}
	}
	dir := t.TempDir()
	cmd := exec.Command("sh", "scripts/prompts.sh", dir)
	cmd.Dir = filepath.Join("..", "..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("prompts.sh: %v\n%s", err, out)
	}
	embedded, _ := files.ReadDir(".")
	for _, e := range embedded {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatalf("the script did not produce %s: %v", e.Name(), err)
		}
		name, law := e.Name()[:len(e.Name())-3], Law(e.Name()[len(e.Name())-2:])
		checkPrompt(t, law, name, b)
		if want, _ := files.ReadFile(e.Name()); !bytes.Equal(b, want) {
			t.Errorf("%s: the script's output differs from the committed file: rerun scripts/prompts.sh and commit", e.Name())
		}
	}
}
