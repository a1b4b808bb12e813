package edge

import (
	"os/exec"
)

func runGo(args ...string) (string, error) {
	b, err := exec.Command("go", args...).Output()
	return string(b), err
}
