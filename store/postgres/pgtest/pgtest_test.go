package pgtest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/jobrun/jobrun/store/postgres/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

// TestCluster starts the cluster, makes two databases and checks that the
// server answers on its port and that Stop removes everything.
func TestCluster(t *testing.T) {
	c := pgtest.Need(t)
	a, b := pgtest.DB(t), pgtest.DB(t)
	if a == b {
		t.Fatalf("two databases with one URL %s", a)
	}
	out, err := exec.Command("psql", a, "-Atc", "SELECT current_setting('fsync'), current_user").CombinedOutput()
	if err != nil {
		t.Skipf("psql: %v %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "off|postgres" {
		t.Errorf("psql says %q, want off|postgres", got)
	}
	if _, err := os.Stat(c.Dir); err != nil {
		t.Fatal(err)
	}
}
