// Package arch_test holds the layer table of wxauth's internal packages and
// checks every package's imports against it.
//
// Two requests cross the packages one way, down the table; below the
// router (httpapi), each enters at most four:
//
//   - /oauth/callback: login (the OpenID Provider's callback) -> {wechat
//     (code exchange, user info), session (JWTs, refresh tokens)} -> store
//     (records, users): three.
//   - a /wx message: callback (the *callback.Server httpapi is handed as an
//     http.Handler; httpapi does not import callback) -> store
//     (de-duplication): two. A QR login's scan event goes on from callback
//     into qrlogin, a callback.Handler (qrlogin imports callback, not the
//     other way), then to wechat (the scanner's user/info) and store: four,
//     the longest path of the service.
//
// Package metrics implements the observers the domain packages declare
// (callback, login, qrlogin, wechat): they report to it without importing
// it. [TestDepth] keeps the handlers' import chains from growing.
package arch_test

import (
	"bufio"
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// layer is one package's place: its rank and the module packages it may
// import. A package may import only packages of a lower rank, so the table
// has no cycle and no upward edge.
type layer struct {
	rank int
	may  []string
}

// layers is every package under internal/ (and web, which httpapi imports),
// named relative to the module. A new package, or an import not listed here,
// fails [TestLayers]: add it here only if it points down.
var layers = map[string]layer{
	// Leaves: the standard library and third-party modules only.
	"internal/clients":   {0, nil},
	"internal/clocktest": {0, nil}, // imported by tests only
	"internal/logtest":   {0, nil}, // imported by tests only
	"internal/logx":      {0, nil},
	"internal/redirect":  {0, nil},
	"internal/secret":    {0, nil},
	"internal/store":     {0, nil},
	"web":                {0, nil},
	// The WeChat emulator checks the service from outside: it shares no
	// code with it (its crypto is its own, on purpose).
	"internal/wxemu": {0, nil},

	// The store's back ends and its conformance suite.
	"internal/store/memory":    {1, []string{"internal/store"}},
	"internal/store/postgres":  {1, []string{"internal/store"}},
	"internal/store/redis":     {1, []string{"internal/store"}},
	"internal/store/sqlite":    {1, []string{"internal/store"}},
	"internal/store/storetest": {1, []string{"internal/clocktest", "internal/store"}},

	// Domain packages over the store.
	"internal/callback": {1, []string{"internal/store"}},
	"internal/session":  {1, []string{"internal/secret", "internal/store"}},
	"internal/wechat":   {1, []string{"internal/secret", "internal/store"}},
	"internal/config":   {1, []string{"internal/clients", "internal/redirect"}}, // imported by cmd/authsvc only

	"internal/qrlogin": {2, []string{"internal/callback", "internal/store", "internal/wechat"}},
	"internal/proxy":   {2, []string{"internal/clients", "internal/session", "internal/store", "internal/wechat"}},

	"internal/login": {2, []string{"internal/clients", "internal/redirect", "internal/secret",
		"internal/session", "internal/store", "internal/wechat"}},

	// metrics implements the observers of callback, login, qrlogin and
	// wechat.
	"internal/metrics": {4, []string{"internal/callback", "internal/login", "internal/qrlogin", "internal/store",
		"internal/wechat"}},

	// httpapi is the top: it routes every request.
	"internal/httpapi": {5, []string{"internal/clients", "internal/login", "internal/metrics", "internal/proxy",
		"internal/qrlogin", "internal/redirect", "internal/secret", "internal/session", "internal/store",
		"internal/wechat", "web"}},
}

// TestLayerTable checks that the table itself points down.
func TestLayerTable(t *testing.T) {
	for pkg, l := range layers {
		for _, dep := range l.may {
			d, ok := layers[dep]
			switch {
			case !ok:
				t.Errorf("%s may import %s, which is not in the table", pkg, dep)
			case d.rank >= l.rank:
				t.Errorf("%s (rank %d) may import %s (rank %d): the table points up or sideways", pkg, l.rank, dep, d.rank)
			}
		}
	}
}

// depth is the number of packages on the longest chain of allowed imports
// from pkg down to a leaf, pkg included.
func depth(pkg string) int {
	d := 0
	for _, dep := range layers[pkg].may {
		d = max(d, depth(dep))
	}
	return d + 1
}

// TestDepth: below the router, the handler of /oauth/callback (login) and
// those of a /wx message (callback, and qrlogin for a QR scan, which
// callback enters first) reach the store in at most three packages of
// imports, so that a request enters at most four.
func TestDepth(t *testing.T) {
	for pkg, most := range map[string]int{"internal/login": 3, "internal/callback": 2, "internal/qrlogin": 3} {
		if d := depth(pkg); d > most {
			t.Errorf("%s is %d packages deep (its longest import chain), want at most %d", pkg, d, most)
		}
	}
}

// TestLayers reads the imports of every package under internal/ (test files
// left out) and fails on each module import the table does not allow.
func TestLayers(t *testing.T) {
	root, mod := moduleRoot(t)
	found := map[string]bool{}
	err := filepath.WalkDir(filepath.Join(root, "internal"), func(dir string, e fs.DirEntry, err error) error {
		if err != nil || !e.IsDir() {
			return err
		}
		if e.Name() == "testdata" {
			return filepath.SkipDir
		}
		p, err := build.Default.ImportDir(dir, 0)
		if _, none := err.(*build.NoGoError); none {
			return nil
		}
		if err != nil {
			return err
		}
		if len(p.GoFiles)+len(p.CgoFiles) == 0 {
			return nil // tests only, like this one
		}
		rel, _ := filepath.Rel(root, dir)
		pkg := filepath.ToSlash(rel)
		found[pkg] = true
		l, ok := layers[pkg]
		if !ok {
			t.Errorf("%s is not in the layer table: give it a rank and the packages it may import", pkg)
			return nil
		}
		for _, imp := range p.Imports {
			dep, ok := strings.CutPrefix(imp, mod+"/")
			if !ok || slices.Contains(l.may, dep) {
				continue
			}
			d, ok := layers[dep]
			switch {
			case ok && d.rank > l.rank:
				t.Errorf("%s imports %s: an upward import (rank %d -> %d)", pkg, dep, l.rank, d.rank)
			case ok && d.rank == l.rank:
				t.Errorf("%s imports %s: a sideways import (both rank %d)", pkg, dep, l.rank)
			default:
				t.Errorf("%s imports %s, which the layer table does not allow", pkg, dep)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for pkg := range layers {
		if strings.HasPrefix(pkg, "internal/") && !found[pkg] {
			t.Errorf("the layer table names %s, which has no Go files", pkg)
		}
	}
}

// moduleRoot returns the directory of go.mod above the test and the module
// path it declares.
func moduleRoot(t *testing.T) (dir, mod string) {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		f, err := os.Open(filepath.Join(dir, "go.mod"))
		if err == nil {
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if m, ok := strings.CutPrefix(sc.Text(), "module "); ok {
					return dir, strings.TrimSpace(m)
				}
			}
			t.Fatalf("%s/go.mod declares no module", dir)
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = up
	}
}
