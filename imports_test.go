package jobrun_test

// The import rules of docs/architecture.md, checked against what the code
// imports (go list). Dependencies point one way: cmd/jobrun wires store,
// stream and ui, which meet only through jobs and small interfaces
// declared by their consumers.

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/jobrun/jobrun"

// importRules lists, for each package of the module (a pattern: "x/..."
// is x and everything under it), the module's packages it may import
// directly. A package without a rule may import nothing of the module;
// "*" allows anything (the wiring). The first matching pattern wins, so
// specific patterns come first.
var importRules = []struct {
	pkg   string
	allow []string
}{
	{"cmd/jobrun", []string{"*"}},
	{"bench/...", []string{"*"}}, // tools that drive the real binary
	{"jobs/progress", nil},       // a leaf: the standard library only
	{"jobs", []string{"jobs/progress"}},
	{"store", []string{"jobs/..."}},                                        // the contract: no backend
	{"store/storetest", []string{"jobs/...", "store"}},                     // the conformance suite
	{"store/...", []string{"jobs/...", "store"}},                           // a backend: never another one
	{"stream/streamtest", []string{"jobs/...", "store/...", "stream/..."}}, // test support only
	{"stream/search", []string{"jobs/..."}},
	{"stream/remote", []string{"jobs/...", "stream", "stream/api", "stream/search"}},
	{"stream/access", []string{"jobs/...", "stream"}},
	{"stream/api", []string{"jobs/...", "stream", "stream/access", "stream/search"}},
	{"stream/ingest", []string{"jobs/...", "stream", "stream/access"}},
	{"stream", []string{"jobs/..."}},
	{"ui", []string{"jobs/..."}},
}

// stdlibOnly are packages that import nothing outside the standard
// library.
var stdlibOnly = []string{"jobs/progress"}

// testOnly are packages that only tests may import.
var testOnly = []string{"stream/streamtest", "store/storetest", "store/postgres/pgtest"}

// onlyImporters lists third-party packages that one part of the module
// alone may import (a pattern as in importRules).
var onlyImporters = map[string][]string{
	"github.com/mattn/go-sqlite3": {"store/sqlite"},
	"github.com/jackc/pgx/v5":     {"store/postgres"},
	"github.com/coder/websocket":  {"stream/...", "cmd/jobrun", "bench/..."},
	"github.com/urfave/cli/v2":    {"cmd/jobrun"},
}

// matches reports whether package p (relative to the module) matches
// pattern.
func matches(pattern, p string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return p == pattern
}

// allowedImport reports whether package p may import q (both relative).
func allowedImport(p, q string) (ok, ruled bool) {
	for _, r := range importRules {
		if !matches(r.pkg, p) {
			continue
		}
		for _, a := range r.allow {
			if a == "*" || matches(a, q) {
				return true, true
			}
		}
		return false, true
	}
	return false, false
}

type listedPackage struct {
	ImportPath string
	Imports    []string
	Standard   bool
}

// listPackages runs go list on the module.
func listPackages(t *testing.T, args ...string) map[string]listedPackage {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-e", "-json=ImportPath,Imports,Standard"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]listedPackage{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

func rel(importPath string) (string, bool) {
	if importPath == module {
		return ".", true
	}
	return strings.CutPrefix(importPath, module+"/")
}

// TestImportRules fails when a package imports a package of the module
// that the rules above do not allow, when a leaf imports more than the
// standard library, or when a non-test package imports test support.
func TestImportRules(t *testing.T) {
	pkgs := listPackages(t, "./...")
	if len(pkgs) < 8 {
		t.Fatalf("go list found %d packages; want the whole module", len(pkgs))
	}
	for _, p := range pkgs {
		from, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		for _, imp := range p.Imports {
			to, internal := rel(imp)
			if !internal {
				for prefix, allowed := range onlyImporters {
					if imp == prefix || strings.HasPrefix(imp, prefix+"/") {
						if !slices.ContainsFunc(allowed, func(a string) bool { return matches(a, from) }) {
							t.Errorf("%s imports %s, which only %v may import", from, imp, allowed)
						}
					}
				}
				continue
			}
			if slices.Contains(testOnly, to) {
				t.Errorf("%s imports %s, which only tests may import", from, to)
				continue
			}
			ok, ruled := allowedImport(from, to)
			switch {
			case !ruled:
				t.Errorf("%s has no import rule (imports_test.go) and imports %s", from, to)
			case !ok:
				t.Errorf("%s imports %s: not allowed by the layout (docs/architecture.md)", from, to)
			}
		}
	}
	for _, leaf := range stdlibOnly {
		p, ok := pkgs[path.Join(module, leaf)]
		if !ok {
			t.Errorf("package %s not found", leaf)
			continue
		}
		deps := listPackages(t, "-deps", "./"+leaf)
		for _, d := range deps {
			if !d.Standard && d.ImportPath != p.ImportPath {
				t.Errorf("%s depends on %s; it must import the standard library only", leaf, d.ImportPath)
			}
		}
	}
}

// TestImportRulesCatch checks the checker: imports the layout forbids are
// refused, the ones it allows pass.
func TestImportRulesCatch(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		want     bool
	}{
		{"jobs", "store", false},
		{"jobs", "jobs/progress", true},
		{"jobs/progress", "jobs", false},
		{"store", "stream", false},
		{"store/sqlite", "store", true},
		{"store", "store/sqlite", false},
		{"store/postgres", "store/sqlite", false},
		{"store/postgres", "store", true},
		{"store/postgres", "stream", false},
		{"store/sqlite", "store/postgres", false},
		{"store/storetest", "store/sqlite", false},
		{"store/storetest", "store", true},
		{"store/postgres/pgtest", "store/postgres", false},
		{"stream", "store/postgres", false},
		{"stream", "store/sqlite", false},
		{"stream", "store", false},
		{"stream", "stream/api", false},
		{"stream/api", "stream/ingest", false},
		{"stream/ingest", "stream/api", false},
		{"stream/api", "stream/access", true},
		{"stream/access", "stream/api", false},
		{"ui", "stream", false},
		{"ui", "store", false},
		{"cmd/jobrun", "stream/api", true},
		{"stream/api", "stream/remote", false},
		{"stream/search", "stream", false},
	} {
		if got, _ := allowedImport(tc.from, tc.to); got != tc.want {
			t.Errorf("%s -> %s: allowed = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
}
