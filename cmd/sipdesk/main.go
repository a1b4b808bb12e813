// Command sipdesk runs the SIP account platform: `sipdesk serve` runs the
// portal, the API and the SIP edge; `sipdesk admin …` is the operator CLI.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

var version = "dev"

const usage = `sipdesk: SIP accounts for VoIP providers.

Usage:
  sipdesk serve [flags]          run portal, API and SIP edge (sipdesk serve -h for flags)
  sipdesk admin [--data DIR | --database DSN] COMMAND ...   operator commands (sipdesk admin -h)
  sipdesk version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "admin":
		return admin(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "sipdesk", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "sipdesk: unknown command %q\n\n%s", args[0], usage)
	return 2
}
