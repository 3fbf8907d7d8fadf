// Package ui serves jobrun's web pages and their assets, embedded in the
// binary: go build is the whole build, no npm step.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var staticFS embed.FS

// csp forbids inline script and every origin but our own: job output is
// hostile input, and a page must never load anything from elsewhere.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the dashboard at /, the job page at /jobs/{ref}, the
// login page at /login and the assets under /assets/.
func Handler() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(assetFS{sub})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		page(w, r, sub, "index.html")
	})
	mux.HandleFunc("GET /jobs/{ref}", func(w http.ResponseWriter, r *http.Request) {
		page(w, r, sub, "job.html")
	})
	// The login page of a server with a token; its form posts to the
	// server's POST /login (stream.Gate).
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		page(w, r, sub, "login.html")
	})
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", secure(files)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("404 page not found\n"))
	})
	return mux
}

// assetFS is the assets' file system for http.FileServerFS, which hands
// Open the URL's path as it is: a name that is not a valid path (invalid
// UTF-8, as in /assets/%c0%ae%c0%ae/etc/passwd) is missing, a 404, where
// the embedded FS's fs.ErrInvalid would make a 500.
type assetFS struct{ fs.FS }

func (a assetFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return a.FS.Open(name)
}

func page(w http.ResponseWriter, r *http.Request, fsys fs.FS, name string) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		http.Error(w, "page missing from the build", http.StatusInternalServerError)
		return
	}
	setSecurityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
}

func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		if strings.HasSuffix(r.URL.Path, ".js") {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		}
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}
