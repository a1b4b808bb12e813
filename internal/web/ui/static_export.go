package ui

import "net/http"

// Static serves the portal's static files (CSS, icons) under /static/, for
// the operator console that shares its look.
func Static() http.Handler { return (&UI{}).static() }
